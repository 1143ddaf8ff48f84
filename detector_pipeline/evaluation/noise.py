"""Is A worse (or better) than B beyond noise? The one rule every comparison here uses: the 95 %
interval of the difference A - B of a metric lies wholly below zero (worse: "refuted") or wholly
above it (better: "confirmed"); otherwise "inconclusive". The metric is ROC-AUC, except on people's
verdicts, where it is the share of judged images decided as people decided (review/regression.py).

Two designs, each with the interval it needs:
- paired (`paired_difference`): both models score the same images (the promotion gate, the
  ablations, the gate on verdicts). The statistic is the mean over seeds of metric(A, seed) -
  metric(B, seed). Its interval comes from a two-level bootstrap: each resample draws source
  groups with replacement and, independently, seeds with replacement, so it is as wide as both
  kinds of noise make it (a model without seeds, such as the probe, pairs with every seed of the
  other).
- independent (`independent_auc_difference`): other images (a live label batch against the model's
  own test split). The two standard errors, each read off its bootstrap interval over source groups
  (width / 3.92), add in quadrature (the normal approximation).
"""

from collections.abc import Callable

import numpy as np
from scipy.stats import norm

from detector_pipeline.evaluation.metrics import grouped_bootstrap, interval, roc_auc

N_RESAMPLES = 1000
LEVEL = 0.95
POWER = 0.8
Z95 = float(norm.ppf(0.5 + LEVEL / 2))

Metric = Callable[[np.ndarray, np.ndarray], float | None]


def verdict(ci95: list[float] | None) -> str:
    if not ci95:
        return "inconclusive"
    return "confirmed" if ci95[0] > 0 else "refuted" if ci95[1] < 0 else "inconclusive"


def minimum_detectable_difference(standard_error: float) -> float:
    """The true difference the design finds with 80 % power at the 5 % level."""
    return float((Z95 + norm.ppf(POWER)) * standard_error)


def as_seed_rows(scores: np.ndarray, n_seeds: int) -> np.ndarray:
    """[n_seeds, n]: a model without seeds (the probe, a convex fit) gives the same row for each."""
    scores = np.asarray(scores, dtype=float)
    return np.broadcast_to(scores, (n_seeds, scores.shape[-1])) if scores.ndim == 1 else scores


def _mean_difference(y: np.ndarray, a: np.ndarray, b: np.ndarray, seeds: np.ndarray, index: np.ndarray,
                     metric: Metric) -> float | None:
    diffs = []
    for k in seeds:
        value_a, value_b = metric(y[index], a[k, index]), metric(y[index], b[k, index])
        if value_a is None or value_b is None:
            return None
        diffs.append(value_a - value_b)
    return float(np.mean(diffs))


def paired_difference(y: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, groups: np.ndarray,
                      n_resamples: int = N_RESAMPLES, seed: int = 0, metric: Metric = roc_auc) -> dict:
    """scores_a, scores_b: [n_seeds, n_images] (seed k of A paired with seed k of B) or [n_images];
    `metric(y, scores)` is None where undefined (ROC-AUC on one class). Returns the observed
    difference, its interval, the verdict, the bootstrap standard error and the minimum detectable
    difference."""
    y = np.asarray(y).astype(int)
    n_seeds = max(np.ndim(scores_a) == 2 and len(scores_a) or 1, np.ndim(scores_b) == 2 and len(scores_b) or 1)
    a, b = as_seed_rows(scores_a, n_seeds), as_seed_rows(scores_b, n_seeds)
    observed = _mean_difference(y, a, b, np.arange(n_seeds), np.arange(len(y)), metric)
    seed_draws = np.random.default_rng([seed, 1])
    draws = grouped_bootstrap(
        lambda index: _mean_difference(y, a, b, seed_draws.integers(0, n_seeds, n_seeds), index, metric),
        groups, n_resamples, seed) if observed is not None else np.empty(0)
    result = {"difference": observed, "n_seeds": int(n_seeds), "n_images": int(len(y)), "positives": int(y.sum()),
              "n_groups": int(len(np.unique(np.asarray(groups)))), "resamples": int(len(draws))}
    if observed is None or len(draws) < 2:
        return {**result, "ci95": None, "standard_error": None, "minimum_detectable_difference": None,
                "verdict": "inconclusive"}
    ci95, se = interval(draws, LEVEL), float(draws.std(ddof=1))
    return {**result, "ci95": ci95, "standard_error": se,
            "minimum_detectable_difference": minimum_detectable_difference(se), "verdict": verdict(ci95)}


def standard_error(ci95: list[float] | None) -> float | None:
    """From a 95 % interval; None where there is none or it has no width (one source group, say):
    no noise estimate, so no verdict."""
    if not ci95 or ci95[1] - ci95[0] <= 0:
        return None
    return (ci95[1] - ci95[0]) / (2 * Z95)


def independent_auc_difference(value: float | None, ci95: list[float] | None, reference: float | None,
                               reference_ci95: list[float] | None) -> dict:
    """value - reference on different images, with its interval and verdict; `judged` False (and why)
    where either figure or its noise is unknown."""
    missing = ("the batch's ROC-AUC is undefined (one class only)" if value is None else
               "the model has no test ROC-AUC (no evaluation report)" if reference is None else
               "the batch's ROC-AUC has no interval (too few source groups)" if standard_error(ci95) is None else
               "the model's test ROC-AUC has no interval" if standard_error(reference_ci95) is None else None)
    if missing:
        return {"difference": None, "difference_95ci": None, "verdict": "inconclusive", "judged": False,
                "not_judged_because": missing}
    difference = value - reference
    se = float(np.hypot(standard_error(ci95), standard_error(reference_ci95)))
    ci = [difference - Z95 * se, difference + Z95 * se]
    return {"difference": difference, "difference_95ci": ci, "verdict": verdict(ci), "judged": True}
