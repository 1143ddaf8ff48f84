"""Ranking metrics from scikit-learn; None where a split holds a single class (the AUC is undefined)."""

import numpy as np
from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    y_true = np.asarray(y_true).astype(int)
    return float(roc_auc_score(y_true, scores)) if 0 < y_true.sum() < len(y_true) else None


def pr_auc(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    """Average precision, the step-wise area under the precision-recall curve."""
    y_true = np.asarray(y_true).astype(int)
    return float(average_precision_score(y_true, scores)) if 0 < y_true.sum() < len(y_true) else None


def ranking_metrics(y_true: np.ndarray, scores: np.ndarray) -> dict:
    y_true = np.asarray(y_true).astype(int)
    return {"roc_auc": roc_auc(y_true, scores), "pr_auc": pr_auc(y_true, scores), "n": int(len(y_true)),
            "positives": int(y_true.sum())}


def grouped_bootstrap(statistic, groups: np.ndarray, n_resamples: int = 200, seed: int = 0) -> np.ndarray:
    """`statistic(index)` over resamples that draw whole source groups with replacement (images of one
    source are not independent). Resamples where the statistic is undefined (None) are dropped."""
    groups = np.asarray(groups)
    unique, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(len(unique))]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        picked = rng.integers(0, len(unique), len(unique))
        index = np.concatenate([members[g] for g in picked])
        value = statistic(index)
        if value is not None:
            values.append(value)
    return np.asarray(values, dtype=float)


def interval(values: np.ndarray, level: float = 0.95) -> list[float] | None:
    if len(values) == 0:
        return None
    tail = (1 - level) / 2 * 100
    return [float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))]


def at_threshold(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """Precision, recall, false-positive rate and the confusion matrix at a fixed threshold."""
    y_true = np.asarray(y_true).astype(int)
    predicted = (np.asarray(scores) >= threshold).astype(int)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y_true, predicted, labels=[0, 1]).ravel())
    return {"precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None,
            "false_positive_rate": fp / (fp + tn) if fp + tn else None,
            "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp}}
