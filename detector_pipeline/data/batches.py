"""Label batches: the base data set, and new batches arriving under `data/incoming/`.

A new batch is a folder `data/incoming/<batch name>/` holding `labels.parquet` (image paths relative
to that folder) and its images. The writer creates the empty file `_READY` last, once everything is
copied: a folder without it is still being written and is left alone. Batch names are folder names:
letters, digits, '.', '_' and '-'.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from detector_pipeline.data.labels import (
    LabelsError,
    normalize_optional_columns,
    read_labels_table,
)
from detector_pipeline.data.splits import held_out_groups_to_test

BASE_BATCH = "base"  # the configured labels file and images root
READY_MARKER = "_READY"
LABELS_FILE = "labels.parquet"
BATCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class BatchLocation:
    labels_path: Path
    images_root: Path


def batch_location(batch: str, base: BatchLocation, incoming_dir: Path) -> BatchLocation:
    if batch == BASE_BATCH:
        return base
    if not BATCH_NAME.match(batch):
        raise LabelsError(f"invalid batch name {batch!r}")
    return BatchLocation(incoming_dir / batch / LABELS_FILE, incoming_dir / batch)


@dataclass(frozen=True)
class IncomingScan:
    ready: list[str]  # complete, well-formed batches
    pending: list[str]  # still being written (no _READY yet)
    malformed: dict[str, str]  # batch -> reason


def scan_incoming(incoming_dir: Path) -> IncomingScan:
    ready, pending, malformed = [], [], {}
    if not incoming_dir.is_dir():
        return IncomingScan([], [], {})
    for folder in sorted(p for p in incoming_dir.iterdir() if p.is_dir()):
        name = folder.name
        if name.startswith("."):
            continue
        if not (folder / READY_MARKER).exists():
            pending.append(name)
            continue
        reason = batch_problem(folder)
        if reason:
            malformed[name] = reason
        else:
            ready.append(name)
    return IncomingScan(ready, pending, malformed)


def batch_problem(folder: Path) -> str | None:
    """A reason the whole batch can't be processed, or None. Row-level problems are not checked here:
    they are quarantined when the batch is materialized."""
    if not BATCH_NAME.match(folder.name) or folder.name == BASE_BATCH:
        return f"invalid batch name {folder.name!r}"
    try:
        table = read_labels_table(folder / LABELS_FILE)
    except LabelsError as exc:
        return str(exc)
    if table.empty:
        return "labels.parquet has no rows"
    return None


def combine_batches(loaded: "pd.DataFrame | dict[str, pd.DataFrame]") -> pd.DataFrame:
    """All batches as one table. Dagster's IO manager hands a bare table for a single upstream
    partition and a dict of them for several. An image labelled in two batches keeps its latest
    label (batches are combined in name order, `base` first). A column that only some batches have
    is null on the others' rows."""
    if isinstance(loaded, pd.DataFrame):
        frames = [loaded]
    else:
        frames = [loaded[k] for k in sorted(loaded, key=lambda k: (k != BASE_BATCH, k))]
    table = normalize_optional_columns(pd.concat(frames, ignore_index=True))
    return held_out_groups_to_test(table.drop_duplicates("sha256", keep="last", ignore_index=True))
