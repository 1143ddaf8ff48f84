"""Reading and validating teacher labels: bad rows are quarantined with a reason, never dropped."""

import hashlib
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from detector_pipeline.data.images import BadImage, decode_rgb, read_regular_file
from detector_pipeline.data.safe_paths import UnsafePath, resolve_inside
from detector_pipeline.errors import BadInput

REQUIRED_COLUMNS = ("image_path", "ai_score")
QUARANTINE_COLUMNS = ["row", "image_path", "reason"]
# Optional columns may be missing from any batch or null on any row. A flag that is not given is False;
# the ground truth that is not given is unknown (pandas' nullable boolean), never guessed.
OPTIONAL_FLAGS = ("family_held_out", "source_held_out")
GROUND_TRUTH = "is_ai"


class LabelsError(BadInput, ValueError):
    """A problem with the whole batch (unreadable file, missing column): nothing can be processed."""


@dataclass
class ValidatedLabels:
    accepted: pd.DataFrame  # input columns + row, sha256, width, height, file (absolute, inside the root)
    quarantined: pd.DataFrame  # row, image_path, reason

    @property
    def n_input(self) -> int:
        return len(self.accepted) + len(self.quarantined)


def read_labels_table(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_parquet(path)
    except FileNotFoundError:
        raise LabelsError(f"labels file not found: {path}") from None
    except Exception as exc:  # pyarrow raises many types for a bad file
        raise LabelsError(f"unreadable labels parquet {path}: {exc}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise LabelsError(f"labels parquet {path} lacks required column(s): {', '.join(missing)}")
    return table.reset_index(drop=True)


def validate_labels(table: pd.DataFrame, root: Path, workers: int = 4) -> ValidatedLabels:
    """Check every row; rows that fail are quarantined with the first reason found."""
    reasons: dict[int, str] = {}
    resolved: dict[int, Path] = {}
    for i, (path, score) in enumerate(zip(table["image_path"], table["ai_score"])):
        reason = _score_problem(score)
        if reason is None:
            try:
                resolved[i] = resolve_inside(root, path)
            except UnsafePath as exc:
                reason = str(exc)
        if reason:
            reasons[i] = reason
    with ThreadPoolExecutor(workers) as pool:
        checked = dict(zip(resolved, pool.map(_check_image, resolved.values())))
    facts: dict[int, tuple[str, int, int]] = {}
    for i, result in checked.items():
        if isinstance(result, str):
            reasons[i] = result
        else:
            facts[i] = result
    reasons.update(_duplicate_problems(table, facts))
    accepted_rows = [i for i in range(len(table)) if i not in reasons]
    accepted = table.iloc[accepted_rows].copy()
    accepted["row"] = accepted_rows
    accepted["ai_score"] = accepted["ai_score"].astype(float)
    accepted["sha256"] = [facts[i][0] for i in accepted_rows]
    accepted["width"] = [facts[i][1] for i in accepted_rows]
    accepted["height"] = [facts[i][2] for i in accepted_rows]
    accepted["file"] = [str(resolved[i]) for i in accepted_rows]  # resolved inside the root
    quarantined = pd.DataFrame(
        [{"row": i, "image_path": _printable(table["image_path"].iloc[i]), "reason": r} for i, r in sorted(reasons.items())],
        columns=QUARANTINE_COLUMNS,
    )
    return ValidatedLabels(accepted.reset_index(drop=True), quarantined)


def normalize_optional_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The optional columns in one form whichever batches they came from (see OPTIONAL_FLAGS)."""
    for column in OPTIONAL_FLAGS:
        if column in table.columns:
            table[column] = table[column].astype(object).where(table[column].notna(), False).astype(bool)
    if GROUND_TRUTH in table.columns:
        known = table[GROUND_TRUTH].notna()
        values = table[GROUND_TRUTH].astype(object).where(known, None)
        table[GROUND_TRUTH] = pd.array([None if v is None else bool(v) for v in values], dtype="boolean")
    return table


def load_labels(labels_path: Path, root: Path) -> ValidatedLabels:
    return validate_labels(read_labels_table(labels_path), root)


def _score_problem(score: object) -> str | None:
    if score is None or isinstance(score, bool):
        return "null score" if score is None else "score is not a number"
    try:
        value = float(score)
    except (TypeError, ValueError):
        return "score is not a number"
    if math.isnan(value):
        return "NaN score"
    if math.isinf(value):
        return "infinite score"
    if not 0.0 <= value <= 1.0:
        return f"score {value:g} outside [0, 1]"
    return None


def _check_image(path: Path) -> tuple[str, int, int] | str:
    try:
        data = read_regular_file(path)  # one read: the hash and the decoded size from the same bytes
        width, height = decode_rgb(data).size
        return hashlib.sha256(data).hexdigest(), width, height
    except BadImage as exc:
        return str(exc)
    except OSError as exc:
        return f"unreadable file: {exc.strerror or exc}"


def _duplicate_problems(table: pd.DataFrame, facts: dict[int, tuple[str, int, int]]) -> dict[int, str]:
    """The same image (by content) twice: conflicting scores quarantine every copy; equal scores keep
    the first copy and quarantine the others as duplicates."""
    by_hash: dict[str, list[int]] = {}
    for i, (sha, _, _) in facts.items():
        by_hash.setdefault(sha, []).append(i)
    return same_image_problems(by_hash.values(), lambda i: round(float(table["ai_score"].iloc[i]), 6), "score")


def same_image_problems(groups, value_of, what: str) -> dict[int, str]:
    """groups: the row numbers of each image. Rows of one image with different values (`value_of`)
    are all quarantined; equal values keep the first row and quarantine the others as duplicates.
    Label batches (scores) and verdict files (verdicts) follow this one rule."""
    problems = {}
    for rows in groups:
        rows = list(rows)
        if len(rows) < 2:
            continue
        if len({value_of(i) for i in rows}) > 1:
            for i in rows:
                problems[i] = f"same image as row(s) {[r for r in rows if r != i]} with a conflicting {what}"
        else:
            for i in rows[1:]:
                problems[i] = f"duplicate of row {rows[0]}"
    return problems


def _printable(path: object) -> str | None:
    if path is None or (isinstance(path, float) and math.isnan(path)):
        return None  # JSON null, never the string "nan" (a file may be named that)
    if isinstance(path, bytes):
        return path.decode("utf-8", errors="backslashreplace")
    if isinstance(path, str):
        return path.encode("utf-8", errors="backslashreplace").decode("utf-8")[:300]
    return repr(path)
