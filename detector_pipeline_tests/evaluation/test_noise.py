"""The one "beyond noise" rule, paired and independent, on cases with known answers."""

import numpy as np
import pytest

from detector_pipeline.evaluation import ablations
from detector_pipeline.evaluation import noise
from detector_pipeline.evaluation.noise import paired_difference

pytestmark = pytest.mark.slow  # 7 s to 2 min each on 2 cores: sklearn's roc_auc_score in a loop over bootstrap resamples and seeds


def _data(n: int, positives: float, group_size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < positives).astype(int)
    return rng, y, np.arange(n) // group_size


def _model(rng, y, noise: float, seeds: int) -> np.ndarray:
    """Scores ranking y with Gaussian noise: the less noise, the better the ranking."""
    return np.stack([y + rng.normal(0, noise, len(y)) for _ in range(seeds)])


def test_two_identical_models_differ_by_zero_with_an_interval_around_zero():
    rng, y, groups = _data(400, 0.15, 4)
    scores = _model(rng, y, 1.0, 5)
    result = paired_difference(y, scores, scores.copy(), groups, n_resamples=200)
    assert result["difference"] == 0.0
    low, high = result["ci95"]
    assert low <= 0.0 <= high and high - low < 1e-12
    assert result["verdict"] == "inconclusive"


def test_a_better_ranking_is_found_at_a_sample_size_where_it_must_be():
    # 1,500 test images, 15 % positives, 5 seeds: noise 0.6 vs 1.2 is an AUC gap of about 0.15, far
    # above what this design can miss.
    rng, y, groups = _data(1500, 0.15, 5)
    better, worse = _model(rng, y, 0.6, 5), _model(rng, y, 1.2, 5)
    result = paired_difference(y, better, worse, groups, n_resamples=300)
    assert result["verdict"] == "confirmed" and result["ci95"][0] > 0
    assert result["difference"] > result["minimum_detectable_difference"]
    assert paired_difference(y, worse, better, groups, n_resamples=300)["verdict"] == "refuted"


def test_a_difference_below_the_minimum_detectable_one_is_inconclusive_and_says_so():
    rng, y, groups = _data(200, 0.15, 4, seed=3)
    a, b = _model(rng, y, 1.00, 3), _model(rng, y, 1.02, 3)
    result = paired_difference(y, a, b, groups, n_resamples=300)
    assert result["verdict"] == "inconclusive"
    assert abs(result["difference"]) < result["minimum_detectable_difference"]


def test_seed_to_seed_noise_widens_the_interval():
    """The same mean difference, once with seeds that agree and once with seeds that disagree: only
    the second may be inconclusive, and its interval must be the wider one."""
    rng, y, groups = _data(3000, 0.15, 3, seed=5)
    b = _model(rng, y, 1.0, 5)
    steady = np.stack([y + rng.normal(0, 0.8, len(y)) for _ in range(5)])
    erratic = np.stack([y + rng.normal(0, noise, len(y)) for noise in (0.3, 2.5, 0.3, 2.5, 0.6)])
    width = {}
    for name, a in (("steady", steady), ("erratic", erratic)):
        low, high = paired_difference(y, a, b, groups, n_resamples=300)["ci95"]
        width[name] = high - low
    assert width["erratic"] > 2 * width["steady"]


def test_a_model_without_seeds_pairs_with_every_seed():
    rng, y, groups = _data(600, 0.2, 3)
    seeded, single = _model(rng, y, 0.7, 4), _model(rng, y, 0.7, 1)[0]
    result = paired_difference(y, seeded, single, groups, n_resamples=100)
    assert result["n_seeds"] == 4 and result["ci95"] is not None


def test_the_study_summary_holds_each_claims_difference_interval_and_minimum_detectable_difference():
    rng, y, groups = _data(900, 0.15, 3)
    noise = {"pos_weight_native": 0.5, "plain_bce_native": 1.5, "pos_weight_resized": 0.5}
    results = {v: [{"seed": s, "test_roc_auc": None, "test_scores": (y + rng.normal(0, n, len(y))).tolist()}
                   for s in range(3)] for v, n in noise.items()}
    probe = y + rng.normal(0, 3.0, len(y))
    summary = ablations.summarize(results, probe, y, groups)
    verdicts = {c["b"]: c for c in summary["claims"]}
    assert verdicts["plain_bce_native"]["verdict"] == "confirmed"
    assert verdicts["probe"]["verdict"] == "confirmed"
    assert verdicts["pos_weight_resized"]["verdict"] == "inconclusive"
    assert verdicts["recipe_as_written"]["verdict"] == "not applicable"  # no such arm in these results
    for claim in summary["claims"][:3]:
        assert claim["n_seeds"] == 3 and claim["minimum_detectable_difference"] > 0
        assert "could not be seen" in claim["words"]
    assert all("test_scores" not in r for rows in summary["runs"].values() for r in rows)


def test_the_verdict_is_where_the_interval_lies():
    assert noise.verdict([0.01, 0.2]) == "confirmed"
    assert noise.verdict([-0.2, -0.01]) == "refuted"
    assert noise.verdict([-0.1, 0.1]) == "inconclusive" and noise.verdict(None) == "inconclusive"


def test_the_independent_design_adds_the_two_standard_errors_in_quadrature():
    # 0.70 +- 0.05 against 0.85 +- 0.03: se = hypot(0.05, 0.03) / 1.96
    outcome = noise.independent_auc_difference(0.70, [0.65, 0.75], 0.85, [0.82, 0.88])
    se = np.hypot(0.05, 0.03) / noise.Z95
    assert outcome["verdict"] == "refuted" and outcome["judged"]
    assert np.allclose(outcome["difference_95ci"], [-0.15 - noise.Z95 * se, -0.15 + noise.Z95 * se])


def test_the_gate_refuses_exactly_where_the_shared_paired_rule_says_worse():
    import pandas as pd

    from detector_pipeline.tasks.promotion import compare_on_validation

    rng, y, groups = _data(1200, 0.15, 4, seed=9)
    labels = pd.DataFrame({"label": y, "split": "val", "source_group": [f"g{g}" for g in groups],
                           "sha256": [f"{i:064x}" for i in range(len(y))]})
    worse, better = _model(rng, y, 1.5, 1)[0], _model(rng, y, 0.5, 1)[0]
    gate = compare_on_validation(labels, worse, better)
    shared = paired_difference(y, worse, better, labels["source_group"].to_numpy())
    assert not gate.passed and shared["verdict"] == "refuted"
    assert gate.difference_95ci == shared["ci95"] and gate.difference == shared["difference"]
    assert compare_on_validation(labels, better, worse).passed
