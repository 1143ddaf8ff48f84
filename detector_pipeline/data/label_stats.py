"""The shape of the teacher's scores, and the loss weight that follows from it."""

import numpy as np

POSITIVE_THRESHOLD = 0.5
LOW_THRESHOLD = 0.1


def pos_weight(positive_share: float) -> float:
    """(1 - p) / p: weights positives so they count as much as negatives in the loss."""
    if not 0.0 < positive_share < 1.0:
        raise ValueError(f"positive share must be strictly between 0 and 1, got {positive_share}")
    return (1.0 - positive_share) / positive_share


def label_stats(scores: np.ndarray) -> dict:
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    positives = int((scores >= POSITIVE_THRESHOLD).sum())
    share = positives / n if n else 0.0
    return {
        "n": n,
        "share_below_0_1": float((scores < LOW_THRESHOLD).mean()) if n else 0.0,
        "share_at_or_above_0_5": share,
        "positives": positives,
        "pos_weight": pos_weight(share) if 0 < positives < n else None,
        "mean_score": float(scores.mean()) if n else None,
    }
