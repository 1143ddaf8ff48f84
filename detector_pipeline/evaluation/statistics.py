"""The statistics of the evaluation report: intervals by source group, calibration, an operating point
chosen on validation, slices. scikit-learn computes every metric; this module only arranges them."""

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss

from detector_pipeline.evaluation.metrics import at_threshold, grouped_bootstrap, interval, pr_auc, roc_auc
from detector_pipeline.evaluation.test_sets import IN_DISTRIBUTION, known_ai, known_real

N_RESAMPLES = 200
NOT_GIVEN = "(not given)"


def with_interval(fn: Callable[[np.ndarray, np.ndarray], float | None], y: np.ndarray, s: np.ndarray,
                  groups: np.ndarray, n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict:
    """A metric and its 95 % bootstrap interval, resampling source groups (not images)."""
    y, s = np.asarray(y), np.asarray(s)
    value = fn(y, s)
    draws = grouped_bootstrap(lambda i: fn(y[i], s[i]), groups, n_resamples, seed) if value is not None else []
    return {"value": value, "ci95": interval(np.asarray(draws))}


def ranking_with_intervals(y: np.ndarray, s: np.ndarray, groups: np.ndarray) -> dict:
    return {"roc_auc": with_interval(roc_auc, y, s, groups), "pr_auc": with_interval(pr_auc, y, s, groups),
            "n": int(len(y)), "positives": int(np.sum(y))}


MIN_VERDICTS = 10  # judged test images (ai or real, both present) before "against human verdicts" is shown


def test_metrics(test: pd.DataFrame, scores: np.ndarray, groups: np.ndarray) -> dict:
    """Against the teacher (score >= 0.5; where a person overrode it, their verdict), where the labels
    have it against the ground truth, and where people judged enough test images, against them."""
    entry = {"teacher": ranking_with_intervals(test["label"].to_numpy(), scores, groups)}
    known = known_real(test) | known_ai(test)
    if known.any():
        entry["ground_truth"] = ranking_with_intervals(known_ai(test)[known].astype(int), scores[known], groups[known])
        entry["ground_truth"]["rows_without_ground_truth"] = int((~known).sum())
    if "verdict" in test.columns:
        judged = test["verdict"].isin(["ai", "real"]).to_numpy()
        y = (test["verdict"][judged] == "ai").astype(int).to_numpy()
        if judged.sum() >= MIN_VERDICTS and 0 < y.sum() < len(y):
            entry["human_verdicts"] = ranking_with_intervals(y, scores[judged], groups[judged])
    return entry


def metrics_section(parts: dict[str, pd.DataFrame], scores: dict[str, dict[str, np.ndarray]],
                    group_of: Callable[[pd.DataFrame], np.ndarray]) -> dict:
    """scores: model -> split -> scores. The in-distribution test at the top of each model's entry, the
    held-out families under `held_out`, each with intervals over source groups."""
    section = {}
    for model, by_split in scores.items():
        entry = test_metrics(parts[IN_DISTRIBUTION], by_split[IN_DISTRIBUTION], group_of(parts[IN_DISTRIBUTION]))
        if "test_held_out" in by_split and "test_held_out" in parts:
            held_out = parts["test_held_out"]
            entry["held_out"] = test_metrics(held_out, by_split["test_held_out"], group_of(held_out))
        if "train" in by_split:
            train_auc = roc_auc(parts["train"]["label"].to_numpy(), by_split["train"])
            test_auc = entry["teacher"]["roc_auc"]["value"]
            entry["train_roc_auc"] = train_auc
            entry["train_test_roc_gap"] = None if train_auc is None or test_auc is None else train_auc - test_auc
        section[model] = entry
    return section


def real_only_false_positive_rate(scores: np.ndarray, groups: np.ndarray, threshold: float) -> dict:
    """Share of real images called AI at the threshold, with an interval over source groups."""
    y = np.zeros(len(scores), dtype=int)
    fpr = with_interval(lambda yy, ss: at_threshold(yy, ss, threshold)["false_positive_rate"], y, scores, groups)
    return {"n_real": int(len(scores)), "sources": int(len(np.unique(groups))), "false_positive_rate": fpr}


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Weighted mean gap between confidence and frequency over equal-width bins."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(p[mask].mean() - y[mask].mean())
    return float(total)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fit_platt(y_val: np.ndarray, p_val: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Platt scaling on the logit: a slope and an intercept fitted on validation. The intercept absorbs
    the log(pos_weight) shift that weighted training puts into the logits."""
    model = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(p_val)[:, None], np.asarray(y_val).astype(int))
    return lambda p: model.predict_proba(_logit(p)[:, None])[:, 1]


def calibration_section(y_val, p_val, y_test, p_test) -> tuple[dict, Callable | None]:
    y_val, y_test = np.asarray(y_val).astype(int), np.asarray(y_test).astype(int)
    before = {"ece": expected_calibration_error(y_test, p_test), "brier": float(brier_score_loss(y_test, p_test))}
    if y_val.min() == y_val.max():
        return {"method": None, "before": before, "after": None, "note": "single-class validation split"}, None
    calibrate = fit_platt(y_val, p_val)
    p_cal = calibrate(p_test)
    after = {"ece": expected_calibration_error(y_test, p_cal), "brier": float(brier_score_loss(y_test, p_cal))}
    return {"method": "Platt scaling on the logit, fitted on validation", "before": before, "after": after,
            "note": "training with pos_weight w shifts logits by about log(w); the fitted intercept removes it"}, calibrate


def reliability_points(y, p, bins: int = 10) -> dict:
    frac, mean = calibration_curve(np.asarray(y).astype(int), np.asarray(p), n_bins=bins, strategy="uniform")
    return {"mean_predicted": mean.tolist(), "fraction_positive": frac.tolist()}


def operating_point_on_test(y: np.ndarray, s: np.ndarray, groups: np.ndarray, threshold: float) -> dict:
    """Precision, recall and false-positive rate at the fixed threshold, each with a grouped interval."""
    point = at_threshold(y, s, threshold)
    out = {"confusion": point["confusion"]}
    for name in ("precision", "recall", "false_positive_rate"):
        out[name] = with_interval(lambda yy, ss, n=name: at_threshold(yy, ss, threshold)[n], y, s, groups)
    return out


def size_band(width: pd.Series, height: pd.Series) -> pd.Series:
    short = np.minimum(width, height)
    return pd.cut(short, [0, 224, 320, 512, 10**9], right=False,
                  labels=["< 224 px", "224-319 px", "320-511 px", ">= 512 px"]).astype(str)


def slice_metrics(test: pd.DataFrame, scores: np.ndarray, threshold: float, by: str,
                  truth: str = "label") -> list[dict]:
    """Per value of `by`: ranking metrics where the slice holds both classes, and the rates at the
    threshold (the false-positive rate is what a real-only slice can say)."""
    rows = []
    y_all = test[truth].astype(int).to_numpy()
    keys = test[by].astype(object).where(test[by].notna(), NOT_GIVEN)
    for value, index in test.groupby(keys, sort=True).indices.items():
        y, s = y_all[index], scores[index]
        rates = at_threshold(y, s, threshold)
        rows.append({by: str(value), "n": int(len(y)), "positives": int(y.sum()), "roc_auc": roc_auc(y, s),
                     "pr_auc": pr_auc(y, s), "tpr_at_threshold": rates["recall"],
                     "fpr_at_threshold": rates["false_positive_rate"]})
    return rows


def family_vs_real(test: pd.DataFrame, scores: np.ndarray, threshold: float) -> list[dict]:
    """Each generator family's images against every real test image (ground truth): the per-generator
    number, and for a family held out of training, the cross-generator number."""
    if "family" not in test.columns or "is_ai" not in test.columns:
        return []
    real, family = known_real(test), test["family"].astype(object).where(test["family"].notna(), NOT_GIVEN)
    held_out = set(family[test.get("family_held_out", pd.Series(False, index=test.index)).astype(bool).to_numpy()])
    rows = []
    for name in sorted(set(family[known_ai(test)])):
        mask = real | (known_ai(test) & (family == name).to_numpy())
        y = (~real[mask]).astype(int)
        s = scores[mask]
        rows.append({"family": name, "held_out_of_training": name in held_out, "n_ai": int(y.sum()),
                     "n_real": int(real.sum()), "roc_auc": roc_auc(y, s), "pr_auc": pr_auc(y, s),
                     "tpr_at_threshold": at_threshold(y, s, threshold)["recall"]})
    return rows
