"""The shape of the teacher's scores, and the loss weight that follows from it."""

from dataclasses import asdict, dataclass

import numpy as np

POSITIVE_THRESHOLD = 0.5
LOW_THRESHOLD = 0.1


def pos_weight(positive_share: float) -> float:
    """(1 - p) / p: weights positives so they count as much as negatives in the loss."""
    if not 0.0 < positive_share < 1.0:
        raise ValueError(f"positive share must be strictly between 0 and 1, got {positive_share}")
    return (1.0 - positive_share) / positive_share


@dataclass(frozen=True)
class ScoreShape:
    """How a set of teacher scores is distributed."""

    n: int
    share_below_0_1: float
    share_at_or_above_0_5: float
    positives: int
    mean_score: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def score_shape(scores: np.ndarray) -> ScoreShape:
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    return ScoreShape(n=n, share_below_0_1=float((scores < LOW_THRESHOLD).mean()) if n else 0.0,
                      share_at_or_above_0_5=float((scores >= POSITIVE_THRESHOLD).mean()) if n else 0.0,
                      positives=int((scores >= POSITIVE_THRESHOLD).sum()), mean_score=float(scores.mean()) if n else None)


@dataclass(frozen=True)
class LabelStats:
    """The label_stats asset: the scores' shape over all splits and over the train split, and the one
    pos_weight that follows, for the labels version it was computed from."""

    all_splits: ScoreShape
    train: ScoreShape
    labels_version: str

    @property
    def pos_weight(self) -> float | None:
        """The loss's weight: (1 - p) / p with p the train split's share at or above 0.5; None where
        the train split holds one class only."""
        shape = self.train
        return pos_weight(shape.share_at_or_above_0_5) if 0 < shape.positives < shape.n else None
