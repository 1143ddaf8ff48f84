"""The regression gate on people's verdicts: the one paired noise test, and the images newly wrong."""

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
    assert decision.why.startswith("worse than promoted detector v-old on the 24 images people judged")


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


def test_one_class_among_the_judged_images_is_not_judged_on_ranking():
    rows = _rows()
    rows = rows[rows["y"] == 0].reset_index(drop=True)
    decision = regression.compare_on_verdicts(rows, np.full(len(rows), 0.9), 0.5, np.full(len(rows), 0.1), 0.5, "v",
                                              rows["sha256"].to_numpy())
    assert decision.passed and decision.difference is None and len(decision.newly_wrong) == len(rows)
    assert "one class only" in decision.why
