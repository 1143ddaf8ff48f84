import numpy as np
import pandas as pd
import pytest

from detector_pipeline.evaluation import live


def _batch(n_real=120, n_ai=30, seed=0, separation=2.0):
    rng = np.random.default_rng(seed)
    families = ["real"] * n_real + ["seen"] * (n_ai // 2) + ["new"] * (n_ai - n_ai // 2)
    is_ai = np.array([f != "real" for f in families])
    table = pd.DataFrame({"family": families, "is_ai": pd.array(is_ai, dtype="boolean"),
                          "source_group": [f"g{i // 3}" for i in range(len(families))],
                          "source_package": ["a", "b"] * (len(families) // 2)})
    table["label"] = is_ai.astype(int)
    logits = rng.normal(0, 1, len(table)) + separation * is_ai
    logits[np.array(families) == "new"] -= separation  # the new family looks real to the model
    return table, 1 / (1 + np.exp(-logits))


@pytest.mark.slow  # bootstrap intervals of every figure and slice
def test_batch_figures_have_intervals_decision_rates_and_slices():
    batch, scores = _batch()
    figures = live.batch_figures(batch, scores, 0.5, batch["source_group"].to_numpy())
    roc = figures["teacher"]["roc_auc"]
    assert 0.5 < roc["value"] < 1 and roc["ci95"][0] <= roc["value"] <= roc["ci95"][1]
    assert figures["ground_truth"]["roc_auc"]["value"] == pytest.approx(roc["value"])  # teacher = truth here
    assert figures["decisions"]["ai_share"] == pytest.approx(float(np.mean(scores >= 0.5)))
    assert figures["decisions"]["teacher_ai_share"] == pytest.approx(30 / 150)
    by_family = {r["slice"]: r for r in figures["families"]}
    assert set(by_family) == {"family=new", "family=seen"}
    assert by_family["family=seen"]["roc_auc"] > by_family["family=new"]["roc_auc"]
    assert {r["slice"] for r in figures["sources"]} == {"source_package=a", "source_package=b"}


def test_difference_beyond_noise_needs_both_intervals_clear_of_zero():
    # 0.70 +- 0.05 against 0.85 +- 0.03: difference -0.15, se = hypot(0.0255, 0.0153) = 0.0297
    clear = live.compare_with_test(0.70, [0.65, 0.75], 0.85, [0.82, 0.88])
    assert clear["worse_beyond_noise"] and clear["difference"] == pytest.approx(-0.15)
    assert clear["difference_95ci"][1] == pytest.approx(-0.15 + 1.959964 * 0.0297, abs=1e-3)
    noisy = live.compare_with_test(0.70, [0.50, 0.90], 0.85, [0.82, 0.88])
    assert not noisy["worse_beyond_noise"] and noisy["difference_95ci"][0] < 0 < noisy["difference_95ci"][1]
    better = live.compare_with_test(0.95, [0.94, 0.96], 0.85, [0.84, 0.86])
    assert not better["worse_beyond_noise"] and better["judged"]


@pytest.mark.parametrize("value, ci, test_value, test_ci, because", [
    (None, None, 0.85, [0.8, 0.9], "one class only"),
    (0.6, [0.5, 0.7], None, None, "no test ROC-AUC"),
    (0.6, [0.6, 0.6], 0.85, [0.8, 0.9], "too few source groups"),
    (0.6, [0.5, 0.7], 0.85, None, "test ROC-AUC has no interval"),
])
def test_without_a_figure_or_its_noise_there_is_no_verdict(value, ci, test_value, test_ci, because):
    """A zero-width interval (one source group) is no noise estimate: any drop would count as beyond it."""
    outcome = live.compare_with_test(value, ci, test_value, test_ci)
    assert not outcome["judged"] and not outcome["worse_beyond_noise"] and because in outcome["not_judged_because"]


@pytest.mark.slow  # bootstrap intervals of every figure and slice
def test_aging_verdict_names_the_family_that_got_worse():
    batch, scores = _batch(n_real=300, n_ai=120, separation=3.0)
    figures = live.batch_figures(batch, scores, 0.5, batch["source_group"].to_numpy())
    verdict = live.aging_verdict(figures, {"roc_auc": 0.97, "roc_auc_ci95": [0.95, 0.99]},
                                 {"seen": {"roc_auc": 0.97, "held_out_of_training": False}})
    assert verdict["worse_beyond_noise"] and verdict["judged"]
    worse = {s["slice"]: s for s in verdict["worse_slices"]}
    assert "family=new" in worse and "family=seen" not in worse
    assert worse["family=new"]["compared_with"].endswith("its test split never held this family")
    fine = live.aging_verdict(figures, {"roc_auc": 0.5, "roc_auc_ci95": [0.45, 0.55]}, {})
    assert not fine["worse_beyond_noise"] and fine["worse_slices"] == []


def test_without_ground_truth_families_are_judged_against_the_teacher_within_the_family():
    batch, scores = _batch()
    batch = batch.drop(columns=["is_ai"])
    rows = {r["slice"]: r for r in live.family_slices(batch, scores, batch["source_group"].to_numpy())}
    assert set(rows) == {"family=real", "family=seen", "family=new"}
    assert rows["family=real"]["roc_auc"] is None  # one class: the teacher calls none of them AI
    assert all(r["positives"] == r["n"] for k, r in rows.items() if k != "family=real")


def test_a_family_held_out_of_training_is_compared_with_its_own_held_out_figure():
    figures = {"families": [{"slice": "family=esrgan", "n": 80, "positives": 30, "roc_auc": 0.6,
                             "roc_auc_ci95": [0.55, 0.65]}], "sources": []}
    worse = live.worse_slices(figures, {"roc_auc": 0.9}, {"esrgan": {"roc_auc": 0.7, "held_out_of_training": True}})
    assert worse[0]["test_roc_auc"] == 0.7 and "held out of its training" in worse[0]["compared_with"]
    assert live.worse_slices(figures, {"roc_auc": 0.9}, {"esrgan": {"roc_auc": 0.6, "held_out_of_training": True}}) == []


def test_a_slice_with_a_handful_of_images_is_never_named():
    tiny = {"slice": "source_package=p", "n": 6, "positives": 2, "roc_auc": 0.0, "roc_auc_ci95": [0.0, 0.4]}
    zero_width = {"slice": "source_package=q", "n": 60, "positives": 20, "roc_auc": 0.1, "roc_auc_ci95": [0.1, 0.1]}
    assert live.worse_slices({"families": [], "sources": [tiny, zero_width]}, {"roc_auc": 0.9}, {}) == []
