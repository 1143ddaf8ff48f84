import numpy as np
import pytest

from detector_pipeline.evaluation.metrics import pr_auc, ranking_metrics, roc_auc


def test_perfect_scorer():
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    assert roc_auc(y, s) == 1.0
    assert pr_auc(y, s) == 1.0


def test_inverted_scorer():
    y = np.array([0, 0, 1, 1])
    assert roc_auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0


def test_random_scorer_is_near_half_and_pr_auc_near_prevalence():
    rng = np.random.default_rng(0)
    y = (rng.random(20000) < 0.11).astype(int)
    s = rng.random(20000)
    assert roc_auc(y, s) == pytest.approx(0.5, abs=0.02)
    assert pr_auc(y, s) == pytest.approx(0.11, abs=0.02)


def test_single_class_gives_none_not_a_crash():
    assert ranking_metrics(np.zeros(5), np.arange(5)) == {"roc_auc": None, "pr_auc": None, "n": 5, "positives": 0}
