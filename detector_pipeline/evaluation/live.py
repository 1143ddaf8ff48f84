"""Prequential evaluation: the promoted model scored on a label batch before any model trains on it,
the one honest measurement of how it does on production data as generators change.

A batch's ROC-AUC is "below the model's own test ROC-AUC beyond noise" when the difference's 95 %
interval lies below zero. The two samples are independent (other images), so the difference's
standard error is the root of the sum of the two squared standard errors, each read off its 95 %
bootstrap interval over source groups (width / 3.92, the normal approximation).
"""

import numpy as np
import pandas as pd

from detector_pipeline.evaluation import statistics as stats
from detector_pipeline.evaluation.report import at_threshold
from detector_pipeline.evaluation.test_sets import known_ai, known_real

Z95 = 1.959964


def decision_rates(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """What the feed would have done with the batch at the promoted threshold, and how it compares
    with the teacher's labels there."""
    scores = np.asarray(scores)
    point = at_threshold(labels, scores, threshold)
    return {"threshold": threshold, "n": int(len(scores)), "ai_share": float((scores >= threshold).mean()),
            "teacher_ai_share": float(np.mean(labels)), "precision": point["precision"], "recall": point["recall"],
            "false_positive_rate": point["false_positive_rate"]}


def family_slices(batch: pd.DataFrame, scores: np.ndarray, groups: np.ndarray) -> list[dict]:
    """Each generator family's images against the batch's real images (ground truth), with intervals."""
    if "family" not in batch.columns:
        return []
    real, ai = known_real(batch), known_ai(batch)
    family = batch["family"].astype(object).where(batch["family"].notna(), stats.NOT_GIVEN).to_numpy()
    rows = []
    for name in sorted(set(family[ai])):
        mask = real | (ai & (family == name))
        y = ai[mask].astype(int)
        figure = stats.with_interval(stats.roc_auc, y, scores[mask], groups[mask])
        rows.append({"slice": f"family={name}", "n_ai": int(y.sum()), "n_real": int(real.sum()),
                     "roc_auc": figure["value"], "roc_auc_ci95": figure["ci95"]})
    return rows


def source_slices(batch: pd.DataFrame, scores: np.ndarray, threshold: float) -> list[dict]:
    """Per source package, against the teacher, where the labels name one."""
    if "source_package" not in batch.columns:
        return []
    return [{**row, "slice": f"source_package={row['source_package']}"}
            for row in stats.slice_metrics(batch, scores, threshold, "source_package")]


def batch_figures(batch: pd.DataFrame, scores: np.ndarray, threshold: float, groups: np.ndarray) -> dict:
    """ROC-AUC and PR-AUC against the teacher (and the ground truth where present) with intervals over
    source groups, the decision rates at the threshold, and per family and source."""
    figures = stats.test_metrics(batch, scores, groups)
    figures["decisions"] = decision_rates(batch["label"].to_numpy(), scores, threshold)
    figures["families"] = family_slices(batch, scores, groups)
    figures["sources"] = source_slices(batch, scores, threshold)
    return figures


def standard_error(ci95: list[float] | None) -> float:
    return 0.0 if not ci95 else (ci95[1] - ci95[0]) / (2 * Z95)


def compare_with_test(value: float | None, ci95: list[float] | None, test_value: float | None,
                      test_ci95: list[float] | None) -> dict:
    """The batch's figure minus the test's, with the interval of the difference."""
    if value is None or test_value is None:
        return {"difference": None, "difference_95ci": None, "worse_beyond_noise": False}
    difference = value - test_value
    se = float(np.hypot(standard_error(ci95), standard_error(test_ci95)))
    low, high = difference - Z95 * se, difference + Z95 * se
    return {"difference": difference, "difference_95ci": [low, high], "worse_beyond_noise": bool(high < 0)}


def aging_verdict(figures: dict, test: dict, test_families: dict[str, float]) -> dict:
    """Is the batch's ROC-AUC (against the teacher) below the model's test ROC-AUC beyond noise, and
    which families got worse: a family whose interval lies wholly below the model's figure for it on
    its test split, or below the whole test figure for a family that split never held (a generator the
    model never saw)."""
    batch_roc = figures["teacher"]["roc_auc"]
    overall = compare_with_test(batch_roc["value"], batch_roc["ci95"], test.get("roc_auc"), test.get("roc_auc_ci95"))
    worse = []
    for row in figures["families"]:
        name = row["slice"].removeprefix("family=")
        reference = test_families.get(name, test.get("roc_auc"))
        if row["roc_auc"] is not None and reference is not None and row["roc_auc_ci95"] \
                and row["roc_auc_ci95"][1] < reference:
            worse.append({**row, "test_roc_auc": reference, "in_model_test_split": name in test_families})
    return {"batch_roc_auc": batch_roc["value"], "batch_roc_auc_ci95": batch_roc["ci95"],
            "test_roc_auc": test.get("roc_auc"), "test_roc_auc_ci95": test.get("roc_auc_ci95"), **overall,
            "worse_slices": worse}
