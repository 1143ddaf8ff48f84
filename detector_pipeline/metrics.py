"""Ranking metrics from scikit-learn; None where a split holds a single class (the AUC is undefined)."""

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


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
