"""Scores of a fixed model, cached by image content hash (registry/hash_cache.py): a retrain after a
batch of 30 new images scores those 30, not the whole split again. Only for models that never change
under one key: a detector version (a content hash), an off-the-shelf detector's fetched files."""

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from detector_pipeline.registry.hash_cache import HashCache


def scores_cache(cache_dir: Path, model: str) -> Path:
    """The cache folder of one model's scores."""
    return Path(cache_dir) / model


def cached_scores(cache: Path, sha256: Sequence[str], files: Sequence[Path],
                  score: Callable[[list[Path]], np.ndarray]) -> np.ndarray:
    """The scores of `files` (whose contents hash to `sha256`), in their order; `score` runs only on
    the files whose hash the cache lacks, each distinct content once."""
    store = HashCache(cache, np.float64)
    store.adopt(cache.with_suffix(".parquet"), "score")
    file_of = dict(zip(sha256, files))
    values, _ = store.values(list(sha256), lambda todo: np.asarray(score([file_of[h] for h in todo]), np.float64))
    return values[:, 0] if len(values) else np.zeros(0, np.float64)
