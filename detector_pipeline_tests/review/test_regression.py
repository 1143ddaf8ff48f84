"""The regression gate on people's verdicts: decisions compared by the one paired noise test, and the
images newly wrong."""

import numpy as np
import pandas as pd

from detector_pipeline.review import regression


def _rows(n: int = 24) -> pd.DataFrame:
    verdict = ["ai" if i % 2 else "real" for i in range(n)] + ["unsure"]
    table = pd.DataFrame({"sha256": [f"h{i}" for i in range(n + 1)], "file": [f"img/{i}.png" for i in range(n + 1)],
                          "verdict": verdict})
    return regression.judged(table)


def test_unsure_verdicts_are_not_judged():
    rows = _rows()
    assert len(rows) == 24 and set(rows["verdict"]) == {"ai", "real"} and rows["y"].sum() == 12


def test_a_candidate_that_contradicts_the_verdicts_fails_and_names_the_images():
    rows = _rows()
    right = np.where(rows["y"] == 1, 0.9, 0.1) + np.linspace(0, 0.05, len(rows))
    decision = regression.compare_on_verdicts(rows, 1 - right, 0.5, right, 0.5, "v-old", rows["sha256"].to_numpy())
    assert not decision.passed and decision.compared_with == "v-old"
    assert decision.difference < 0 and decision.difference_95ci[1] < 0
    assert decision.candidate_wrong == 24 and decision.incumbent_wrong == 0
    assert [r["file"] for r in decision.newly_wrong] == rows["file"].tolist()
    assert decision.candidate_right == 0 and decision.incumbent_right == 1
    assert decision.why.startswith("worse than promoted detector v-old beyond noise on the 24 images people judged: "
                                   "decides 0% of them as people did against 100%")


def test_a_candidate_as_good_as_the_promoted_model_passes():
    rows = _rows()
    right = np.where(rows["y"] == 1, 0.9, 0.1)
    decision = regression.compare_on_verdicts(rows, right, 0.5, right, 0.5, "v-old", rows["sha256"].to_numpy())
    assert decision.passed and decision.newly_wrong == [] and decision.difference == 0


def test_no_verdicts_passes_and_says_why_and_no_incumbent_lists_the_candidates_errors():
    assert regression.no_verdicts().passed and "no human verdicts" in regression.no_verdicts().why
    rows = _rows()
    decision = regression.compare_on_verdicts(rows, np.full(len(rows), 0.9), 0.5, None, None, None, rows["sha256"].to_numpy())
    assert decision.passed and decision.candidate_wrong == 12 and "no usable promoted model" in decision.why


def test_false_positives_alone_are_a_regression_set():
    """People judged only real photographs: ROC-AUC is undefined, the decisions still compare."""
    rows = _rows()
    rows = rows[rows["y"] == 0].reset_index(drop=True)
    decision = regression.compare_on_verdicts(rows, np.full(len(rows), 0.9), 0.5, np.full(len(rows), 0.1), 0.5, "v",
                                              rows["sha256"].to_numpy())
    assert not decision.passed and decision.difference == -1 and len(decision.newly_wrong) == len(rows)
    assert decision.candidate_roc_auc is None and decision.incumbent_roc_auc is None


def test_a_ranking_that_hides_many_wrong_decisions_is_refused():
    """Each model at its own threshold: a candidate whose threshold calls most real photographs AI is
    worse on the verdicts even where it ranks them as well as the promoted model."""
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(6, int), np.zeros(54, int)]
    rows = pd.DataFrame({"sha256": [f"h{i}" for i in range(60)], "file": [f"{i}.png" for i in range(60)],
                         "verdict": np.where(y == 1, "ai", "real"), "y": y})
    scores = np.where(y == 1, 0.8, 0.3) + rng.normal(0, 0.02, 60)
    decision = regression.compare_on_verdicts(rows, scores, 0.2, scores, 0.5, "v", np.arange(60) // 3)
    assert decision.candidate_roc_auc == decision.incumbent_roc_auc
    assert not decision.passed and decision.candidate_wrong == 54 and decision.incumbent_wrong == 0
