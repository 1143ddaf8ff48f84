"""Choosing the operating threshold on validation, before the test set is seen, and the decisions it
makes."""

import numpy as np
from sklearn.metrics import precision_recall_curve


def threshold_for_precision(y_true: np.ndarray, scores: np.ndarray, target_precision: float = 0.95) -> dict:
    """The lowest threshold whose validation precision reaches the target (the most recall at that
    precision). Where no threshold reaches it, the F1-best threshold, and `target_reached` is False."""
    y_true = np.asarray(y_true).astype(int)
    if y_true.sum() == 0 or y_true.sum() == len(y_true):
        return {"threshold": 0.5, "target_precision": target_precision, "target_reached": False,
                "val_precision": None, "val_recall": None, "rule": "single-class validation split: default 0.5"}
    precision, recall, thresholds = precision_recall_curve(y_true, scores)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    reached = np.flatnonzero(precision >= target_precision)
    if len(reached):
        i = reached[np.argmax(recall[reached])]
        rule = f"lowest threshold with validation precision >= {target_precision}"
    else:
        f1 = 2 * precision * recall / np.clip(precision + recall, 1e-12, None)
        i = int(np.argmax(f1))
        rule = f"precision {target_precision} not reachable on validation: F1-best threshold"
    return {"threshold": float(thresholds[i]), "target_precision": target_precision, "target_reached": bool(len(reached)),
            "val_precision": float(precision[i]), "val_recall": float(recall[i]), "rule": rule}


def decide(scores: np.ndarray, threshold: float, review_band: float = 0.0) -> np.ndarray:
    """The decision per score: `ai` at or above the threshold, `review` within `review_band` below it,
    else `real`. Feed scoring, batch scores and the drift check's shares all follow this one rule."""
    scores = np.asarray(scores, dtype=float)
    return np.where(scores >= threshold, "ai", np.where(scores >= threshold - review_band, "review", "real"))
