import numpy as np
import pytest

from detector_pipeline.evaluation import ablations


def _runs(y: np.ndarray, seeds=(0, 1), noise: float = 1.0) -> list[dict]:
    rows = []
    for seed in seeds:
        scores = y + np.random.default_rng(seed).normal(0, noise, len(y))
        rows.append({"seed": seed, "test_roc_auc": None, ablations.SCORES: scores.tolist()})
    return rows


@pytest.mark.slow  # about a minute on 2 cores: sklearn's roc_auc_score in a loop over bootstrap resamples and seeds
def test_every_claim_has_a_verdict_and_an_arm_the_profile_does_not_train_is_not_applicable():
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.2).astype(int)
    groups = np.arange(200) // 2
    results = {v: _runs(y) for v in ("pos_weight_native", "plain_bce_native", "pos_weight_resized")}
    summary = ablations.summarize(results, y + rng.normal(0, 1, 200), y, groups)
    by_b = {c["b"]: c for c in summary["claims"]}
    assert list(by_b) == ["plain_bce_native", "pos_weight_resized", "probe", "recipe_as_written"]
    assert by_b["recipe_as_written"]["verdict"] == "not applicable"
    assert "no training changes" in by_b["recipe_as_written"]["words"]
    assert all(by_b[b]["verdict"] in ("confirmed", "refuted", "inconclusive") for b in list(by_b)[:3])
    # the arms are the same process: no verdict claims a difference
    assert by_b["plain_bce_native"]["verdict"] == "inconclusive"


def test_the_recipe_arm_runs_only_where_the_profile_changes_the_training():
    assert not ablations.applicable("recipe_as_written", ())
    assert ablations.applicable("recipe_as_written", (("schedule", "cosine"),))
    assert all(ablations.applicable(v, ()) for v in ("pos_weight_native", "plain_bce_native", "pos_weight_resized"))
