"""Scores of a fixed model, cached by image content hash: a retrain after a batch of 30 new images
scores those 30, not the whole split again. Only for models that never change under one key: a
detector version (a content hash), an off-the-shelf detector's fetched files."""

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from detector_pipeline.registry.artifacts import atomic_path, file_lock


def cached_scores(cache: Path, sha256: Sequence[str], files: Sequence[Path],
                  score: Callable[[list[Path]], np.ndarray]) -> np.ndarray:
    """The scores of `files` (whose contents hash to `sha256`), in their order; `score` runs only on
    the files whose hash the cache lacks, each distinct content once."""
    wanted = pd.DataFrame({"sha256": list(sha256), "file": list(files)})
    known = _read(cache)
    todo = wanted[~wanted["sha256"].isin(known.index)].drop_duplicates("sha256")
    if len(todo):
        new = pd.Series(np.asarray(score(list(todo["file"])), dtype=np.float64), index=todo["sha256"].to_numpy())
        with file_lock(cache):
            known = _read(cache)  # what another run added meanwhile
            known = pd.concat([known, new[~new.index.isin(known.index)]])
            _write(cache, known)
    return known.loc[wanted["sha256"]].to_numpy(dtype=np.float64)


def _read(cache: Path) -> pd.Series:
    if not cache.exists():
        return pd.Series(dtype=np.float64)
    table = pq.read_table(cache)
    return pd.Series(table["score"].to_numpy(), index=table["sha256"].to_pylist(), dtype=np.float64)


def _write(cache: Path, scores: pd.Series) -> None:
    with atomic_path(cache) as tmp:
        pq.write_table(pa.table({"sha256": pa.array(list(scores.index), pa.string()),
                                 "score": pa.array(scores.to_numpy(), pa.float64())}), tmp)
