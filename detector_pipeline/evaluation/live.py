"""Prequential evaluation: the promoted model scored on a label batch before any model trains on it,
the one honest measurement of how it does on production data as generators change.

A batch's ROC-AUC is "below the model's own test ROC-AUC beyond noise" by the project's one rule
(evaluation/noise.py): the two samples are other images, so the independent design.
"""

import numpy as np
import pandas as pd

from detector_pipeline.evaluation import noise
from detector_pipeline.evaluation import statistics as stats
from detector_pipeline.evaluation.metrics import at_threshold
from detector_pipeline.evaluation.test_sets import known_ai, known_real

MIN_SLICE_CLASS = 10  # images of each class (AI, real) a slice needs before it can be named as worse


def decision_rates(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """What the feed would have done with the batch at the promoted threshold, and how it compares
    with the teacher's labels there."""
    scores = np.asarray(scores)
    point = at_threshold(labels, scores, threshold)
    return {"threshold": threshold, "n": int(len(scores)), "ai_share": float((scores >= threshold).mean()),
            "teacher_ai_share": float(np.mean(labels)), "precision": point["precision"], "recall": point["recall"],
            "false_positive_rate": point["false_positive_rate"]}


def family_slices(batch: pd.DataFrame, scores: np.ndarray, groups: np.ndarray) -> list[dict]:
    """Each generator family's images against the batch's real images (ground truth), with intervals.
    Without ground truth: each family's images against the teacher, within the family."""
    if "family" not in batch.columns:
        return []
    if not (known_real(batch) | known_ai(batch)).any():
        return column_slices(batch, scores, groups, "family")
    real, ai = known_real(batch), known_ai(batch)
    family = batch["family"].astype(object).where(batch["family"].notna(), stats.NOT_GIVEN).to_numpy()
    rows = []
    for name in sorted(set(family[ai])):
        mask = real | (ai & (family == name))
        y = ai[mask].astype(int)
        figure = stats.with_interval(stats.roc_auc, y, scores[mask], groups[mask])
        rows.append({"slice": f"family={name}", "n": int(mask.sum()), "positives": int(y.sum()),
                     "n_real": int(real.sum()), "roc_auc": figure["value"], "roc_auc_ci95": figure["ci95"]})
    return rows


def column_slices(batch: pd.DataFrame, scores: np.ndarray, groups: np.ndarray, column: str) -> list[dict]:
    """Per value of `column` (where the labels have it): ROC-AUC against the teacher within the slice,
    with an interval; None where the slice holds one class only."""
    if column not in batch.columns:
        return []
    y_all = batch["label"].astype(int).to_numpy()
    keys = batch[column].astype(object).where(batch[column].notna(), stats.NOT_GIVEN)
    rows = []
    for value, index in batch.groupby(keys, sort=True).indices.items():
        figure = stats.with_interval(stats.roc_auc, y_all[index], scores[index], groups[index])
        rows.append({"slice": f"{column}={value}", "n": int(len(index)), "positives": int(y_all[index].sum()),
                     "roc_auc": figure["value"], "roc_auc_ci95": figure["ci95"]})
    return rows


def batch_figures(batch: pd.DataFrame, scores: np.ndarray, threshold: float, groups: np.ndarray) -> dict:
    """ROC-AUC and PR-AUC against the teacher (and the ground truth where present) with intervals over
    source groups, the decision rates at the threshold, and per family and source."""
    figures = stats.test_metrics(batch, scores, groups)
    figures["decisions"] = decision_rates(batch["label"].to_numpy(), scores, threshold)
    figures["families"] = family_slices(batch, scores, groups)
    figures["sources"] = column_slices(batch, scores, groups, "source_package")
    return figures


def compare_with_test(value: float | None, ci95: list[float] | None, test_value: float | None,
                      test_ci95: list[float] | None) -> dict:
    """The batch's figure minus the test's, by the project's one rule (evaluation/noise.py, the
    independent design): worse beyond noise where the difference's interval lies below zero."""
    outcome = noise.independent_auc_difference(value, ci95, test_value, test_ci95)
    return {**outcome, "worse_beyond_noise": outcome["verdict"] == "refuted"}


def _judgeable(row: dict) -> bool:
    """A slice with enough of each class for its interval to mean something: with a single AI image
    (or an interval of zero width) any ranking is an accident of that image."""
    negatives = row["n"] - row["positives"]
    return (row["roc_auc"] is not None and min(row["positives"], negatives) >= MIN_SLICE_CLASS
            and noise.standard_error(row["roc_auc_ci95"]) is not None)


def worse_slices(figures: dict, test: dict, test_families: dict[str, dict]) -> list[dict]:
    """Slices (with at least MIN_SLICE_CLASS images of each class) whose interval lies wholly below
    the model's own figure: for a family, its figure on the
    model's test split (held out of training or not); for a family that split never held and for a
    source, the whole in-distribution test figure."""
    worse = []
    for row in figures["families"] + figures["sources"]:
        name = row["slice"].removeprefix("family=")
        known = test_families.get(name) if row["slice"].startswith("family=") else None
        reference = known["roc_auc"] if known else test.get("roc_auc")
        if not _judgeable(row) or reference is None or row["roc_auc_ci95"][1] >= reference:
            continue
        where = ("the model's figure for this family" if known and not known["held_out_of_training"] else
                 "the model's figure for this family, held out of its training" if known else
                 "the model's whole test figure" + (": its test split never held this family"
                                                    if row["slice"].startswith("family=") else ""))
        worse.append({**row, "test_roc_auc": reference, "compared_with": where})
    return worse


def aging_verdict(figures: dict, test: dict, test_families: dict[str, dict]) -> dict:
    """Is the batch's ROC-AUC (against the teacher) below the model's test ROC-AUC beyond noise, and
    which slices got worse (worse_slices)."""
    batch_roc = figures["teacher"]["roc_auc"]
    overall = compare_with_test(batch_roc["value"], batch_roc["ci95"], test.get("roc_auc"), test.get("roc_auc_ci95"))
    return {"batch_roc_auc": batch_roc["value"], "batch_roc_auc_ci95": batch_roc["ci95"],
            "test_roc_auc": test.get("roc_auc"), "test_roc_auc_ci95": test.get("roc_auc_ci95"), **overall,
            "worse_slices": worse_slices(figures, test, test_families)}
