"""Is model A better than model B? A paired comparison on the same test images that counts both kinds
of noise: which seeds were drawn (training noise) and which source groups the test holds (sampling).

The statistic is the mean over seeds of ROC-AUC(A, seed) - ROC-AUC(B, seed) on the same images. Its
interval comes from a two-level bootstrap: each resample draws source groups with replacement and,
independently, seeds with replacement, so the interval is as wide as both sources of noise make it.
"""

import numpy as np
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

N_RESAMPLES = 1000
POWER = 0.8


def _auc(y: np.ndarray, s: np.ndarray) -> float | None:
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else None


def _mean_difference(y: np.ndarray, a: np.ndarray, b: np.ndarray, seeds: np.ndarray, index: np.ndarray) -> float | None:
    diffs = []
    for k in seeds:
        auc_a, auc_b = _auc(y[index], a[k, index]), _auc(y[index], b[k, index])
        if auc_a is None or auc_b is None:
            return None
        diffs.append(auc_a - auc_b)
    return float(np.mean(diffs))


def as_seed_rows(scores: np.ndarray, n_seeds: int) -> np.ndarray:
    """[n_seeds, n]: a model without seeds (the probe, a convex fit) gives the same row for each."""
    scores = np.asarray(scores, dtype=float)
    return np.broadcast_to(scores, (n_seeds, scores.shape[-1])) if scores.ndim == 1 else scores


def paired_auc_difference(y: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, groups: np.ndarray,
                          n_resamples: int = N_RESAMPLES, level: float = 0.95, seed: int = 0) -> dict:
    """scores_a, scores_b: [n_seeds, n_images] (seed k of A paired with seed k of B) or [n_images].

    Returns the observed difference, its interval, the bootstrap standard error and the minimum
    detectable difference: the true difference this design finds with 80 % power at the 5 % level,
    (z_0.975 + z_0.8) x standard error."""
    y = np.asarray(y).astype(int)
    n_seeds = max(np.ndim(scores_a) == 2 and len(scores_a) or 1, np.ndim(scores_b) == 2 and len(scores_b) or 1)
    a, b = as_seed_rows(scores_a, n_seeds), as_seed_rows(scores_b, n_seeds)
    all_images, all_seeds = np.arange(len(y)), np.arange(n_seeds)
    observed = _mean_difference(y, a, b, all_seeds, all_images)
    unique, inverse = np.unique(np.asarray(groups), return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(len(unique))]
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_resamples):
        index = np.concatenate([members[g] for g in rng.integers(0, len(unique), len(unique))])
        value = _mean_difference(y, a, b, rng.integers(0, n_seeds, n_seeds), index)
        if value is not None:
            draws.append(value)
    draws = np.asarray(draws)
    result = {"difference": observed, "n_seeds": int(n_seeds), "n_images": int(len(y)), "positives": int(y.sum()),
              "n_groups": int(len(unique)), "resamples": int(len(draws))}
    if observed is None or len(draws) < 2:
        return {**result, "ci95": None, "standard_error": None, "minimum_detectable_difference": None,
                "verdict": "inconclusive"}
    tail = (1 - level) / 2 * 100
    low, high = float(np.percentile(draws, tail)), float(np.percentile(draws, 100 - tail))
    se = float(draws.std(ddof=1))
    return {**result, "ci95": [low, high], "standard_error": se,
            "minimum_detectable_difference": float((norm.ppf(0.5 + level / 2) + norm.ppf(POWER)) * se),
            "verdict": "confirmed" if low > 0 else "refuted" if high < 0 else "inconclusive"}
