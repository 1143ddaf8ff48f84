"""Feed drift: the feed's P(AI) distribution and decision shares against the scores of the promoted
model's in-distribution test split (what it was validated on).

Two statistics, both reported:
- PSI (population stability index) over ten bins cut at the reference's deciles: < 0.1 stable,
  0.1-0.25 a moderate shift, >= 0.25 a major one (the usual credit-scoring convention);
- the two-sample Kolmogorov-Smirnov statistic D and its p-value (scipy).

The check warns when PSI >= 0.25 and the KS p-value < 0.01: a shift both large and not sampling
noise (a small feed's PSI is noisy, a large feed's KS test flags shifts too small to matter). It
also warns when the share of `ai` decisions moved by 0.10 or more with a two-proportion test's
p-value < 0.01. Below 50 images on either side it says so and does not judge: ten bins over fewer
images are noise.
"""

import numpy as np
from scipy import stats

from detector_pipeline.evaluation.thresholds import decide

PSI_BINS = 10
PSI_MAJOR = 0.25
PSI_MODERATE = 0.1
KS_P_VALUE = 0.01
AI_SHARE_SHIFT = 0.10
MIN_IMAGES = 50
EPSILON = 1e-4  # an empty bin's share, so that the logarithm stays finite


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index, with bin edges at the reference's quantiles (ties merged). A
    reference so tied that fewer than three bins remain would see nothing: equal-width bins then."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 4:
        edges = np.linspace(0.0, 1.0, bins + 1)
    edges[0], edges[-1] = -np.inf, np.inf
    expected = np.histogram(reference, edges)[0] / len(reference)
    actual = np.histogram(current, edges)[0] / len(current)
    expected, actual = np.clip(expected, EPSILON, None), np.clip(actual, EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def share_shift(reference_hits: int, reference_n: int, current_hits: int, current_n: int) -> dict:
    """A share in the feed against the reference's, with a two-proportion z-test."""
    p_ref, p_cur = reference_hits / reference_n, current_hits / current_n
    pooled = (reference_hits + current_hits) / (reference_n + current_n)
    se = np.sqrt(pooled * (1 - pooled) * (1 / reference_n + 1 / current_n))
    p_value = 1.0 if se == 0 else float(2 * stats.norm.sf(abs(p_cur - p_ref) / se))
    return {"reference": p_ref, "feed": p_cur, "difference": p_cur - p_ref, "p_value": p_value}


def decisions(scores: np.ndarray, threshold: float, review_band: float) -> dict[str, int]:
    made = decide(scores, threshold, review_band)
    return {kind: int((made == kind).sum()) for kind in ("ai", "review", "real")}


def drift_verdict(reference: np.ndarray, feed: np.ndarray, threshold: float, review_band: float = 0.0) -> dict:
    """The statistics, the shares of each decision, and whether it drifted (and why)."""
    reference, feed = np.asarray(reference, float), np.asarray(feed, float)
    if min(len(feed), len(reference)) < MIN_IMAGES:
        return {"drifted": False, "n_feed": int(len(feed)), "n_reference": int(len(reference)),
                "why": f"too few images to judge ({len(feed)} in the feed, {len(reference)} in the test split; "
                       f"{MIN_IMAGES} each at least)"}
    value = psi(reference, feed)
    ks = stats.ks_2samp(reference, feed)
    ref_counts, feed_counts = decisions(reference, threshold, review_band), decisions(feed, threshold, review_band)
    shares = {kind: share_shift(ref_counts[kind], len(reference), feed_counts[kind], len(feed))
              for kind in ("ai", "review")}
    reasons = []
    if value >= PSI_MAJOR and ks.pvalue < KS_P_VALUE:
        reasons.append(f"score distribution moved: PSI {value:.2f} >= {PSI_MAJOR}, KS D {ks.statistic:.2f} "
                       f"(p {ks.pvalue:.1g} < {KS_P_VALUE})")
    ai = shares["ai"]
    if abs(ai["difference"]) >= AI_SHARE_SHIFT and ai["p_value"] < KS_P_VALUE:
        reasons.append(f"share of `ai` decisions {ai['feed']:.1%} against {ai['reference']:.1%} on the test split")
    return {"drifted": bool(reasons), "why": "; ".join(reasons) or "within the documented thresholds",
            "psi": value, "psi_band": "major" if value >= PSI_MAJOR else "moderate" if value >= PSI_MODERATE else "stable",
            "ks_statistic": float(ks.statistic), "ks_p_value": float(ks.pvalue), "shares": shares,
            "n_feed": int(len(feed)), "n_reference": int(len(reference)), "threshold": threshold,
            "thresholds": {"psi": PSI_MAJOR, "ks_p_value": KS_P_VALUE, "ai_share_shift": AI_SHARE_SHIFT}}
