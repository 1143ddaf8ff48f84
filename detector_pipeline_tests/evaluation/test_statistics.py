"""The report's statistics on cases with known answers."""

import numpy as np
import pandas as pd
import pytest

from detector_pipeline.evaluation import statistics as evaluation
from detector_pipeline.evaluation.metrics import grouped_bootstrap, roc_auc
from detector_pipeline.evaluation.thresholds import threshold_for_precision


def test_perfect_scorer_has_auc_one_and_a_degenerate_interval():
    y = np.array([0] * 30 + [1] * 10)
    s = y + np.linspace(0, 0.5, 40)
    result = evaluation.with_interval(roc_auc, y, s, np.arange(40))
    assert result["value"] == 1.0 and result["ci95"] == pytest.approx([1.0, 1.0])


def test_random_scorer_interval_covers_one_half():
    rng = np.random.default_rng(1)
    y = (rng.random(600) < 0.2).astype(int)
    result = evaluation.with_interval(roc_auc, y, rng.random(600), np.arange(600) // 3)
    low, high = result["ci95"]
    assert low < 0.5 < high and high - low < 0.2


def test_bootstrap_resamples_whole_groups():
    groups = np.repeat(np.arange(10), 5)
    seen = []
    grouped_bootstrap(lambda i: seen.append(i) or 0.0, groups, n_resamples=20)
    for index in seen:
        counts = pd.Series(groups[index]).value_counts()
        assert (counts % 5 == 0).all()  # a group comes whole, once or several times


def test_known_calibration_error():
    y = np.array([0, 1] * 50)
    p = np.full(100, 0.8)
    assert evaluation.expected_calibration_error(y, p) == pytest.approx(0.3)
    assert evaluation.expected_calibration_error(y, np.full(100, 0.5)) == pytest.approx(0.0)


def test_platt_scaling_repairs_overconfident_scores():
    rng = np.random.default_rng(0)
    true_p = rng.uniform(0.05, 0.95, 4000)
    y = (rng.random(4000) < true_p).astype(int)
    logit = np.log(true_p / (1 - true_p))
    overconfident = 1 / (1 + np.exp(-(4 * logit + 2)))  # too sharp and shifted, as pos_weight shifts logits
    section, calibrate = evaluation.calibration_section(y[:2000], overconfident[:2000], y[2000:], overconfident[2000:])
    assert section["before"]["ece"] > 0.1
    assert section["after"]["ece"] < 0.03
    assert section["after"]["brier"] < section["before"]["brier"]


def test_threshold_reaches_the_target_precision_with_the_most_recall():
    y = np.array([0, 0, 0, 0, 1, 0, 1, 1, 1, 1])
    s = np.arange(10) / 10
    op = threshold_for_precision(y, s, 0.95)
    assert op["threshold"] == pytest.approx(0.6) and op["val_precision"] == 1.0 and op["val_recall"] == 0.8
    unreachable = threshold_for_precision(np.array([1, 0, 1, 0]), np.array([0.1, 0.9, 0.2, 0.8]), 0.95)
    assert unreachable["target_reached"] is False


def test_family_against_real_gives_the_cross_generator_number():
    test = pd.DataFrame({"is_ai": [False] * 4 + [True] * 4,
                         "family": ["real"] * 4 + ["seen", "seen", "unseen", "unseen"],
                         "family_held_out": [False] * 6 + [True, True]})
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.15, 0.25])
    rows = {r["family"]: r for r in evaluation.family_vs_real(test, scores, 0.5)}
    assert rows["seen"]["roc_auc"] == 1.0 and rows["seen"]["tpr_at_threshold"] == 1.0
    assert rows["unseen"]["held_out_of_training"] and rows["unseen"]["roc_auc"] == pytest.approx(0.375)


def test_human_verdicts_get_their_own_row_once_there_are_enough():
    rng = np.random.default_rng(0)
    n = 40
    test = pd.DataFrame({"label": rng.integers(0, 2, n), "verdict": [None] * n})
    scores, groups = rng.random(n), np.arange(n)
    assert "human_verdicts" not in evaluation.test_metrics(test, scores, groups)
    test.loc[:evaluation.MIN_VERDICTS - 2, "verdict"] = (["ai", "real"] * evaluation.MIN_VERDICTS)[:evaluation.MIN_VERDICTS - 1]
    assert "human_verdicts" not in evaluation.test_metrics(test, scores, groups)  # one short of enough
    test.loc[:19, "verdict"] = ["ai", "real", "unsure", "real"] * 5
    scores[:20] = np.tile([0.9, 0.1, 0.5, 0.2], 5)
    row = evaluation.test_metrics(test, scores, groups)["human_verdicts"]
    assert row["n"] == 15 and row["positives"] == 5 and row["roc_auc"]["value"] == 1.0
