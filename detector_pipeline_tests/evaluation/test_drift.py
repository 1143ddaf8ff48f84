import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector_pipeline.evaluation import drift


def _test_like(n, seed):
    """Scores shaped like a detector's on an imbalanced test split: most near 0, a tail near 1."""
    rng = np.random.default_rng(seed)
    ai = rng.random(n) < 0.15
    return np.where(ai, rng.beta(5, 2, n), rng.beta(1, 8, n))


def test_a_feed_drawn_like_the_test_split_does_not_drift():
    verdict = drift.drift_verdict(_test_like(400, 0), _test_like(300, 1), threshold=0.6)
    assert not verdict["drifted"], verdict["why"]
    assert verdict["psi"] < drift.PSI_MAJOR and verdict["psi_band"] in ("stable", "moderate")


def test_a_feed_of_one_ai_family_drifts_on_both_the_distribution_and_the_ai_share():
    rng = np.random.default_rng(2)
    verdict = drift.drift_verdict(_test_like(400, 0), rng.beta(5, 2, 200), threshold=0.6)
    assert verdict["drifted"] and verdict["psi"] >= drift.PSI_MAJOR and verdict["ks_p_value"] < 0.01
    assert "PSI" in verdict["why"] and "share of `ai` decisions" in verdict["why"]
    assert verdict["shares"]["ai"]["feed"] > verdict["shares"]["ai"]["reference"]


def test_too_few_images_are_not_judged():
    verdict = drift.drift_verdict(_test_like(400, 0), np.full(10, 0.99), threshold=0.6)
    assert not verdict["drifted"] and "too few images" in verdict["why"]


def test_a_tied_reference_still_sees_a_shift():
    """A model that scores nearly every test image the same leaves one quantile bin; PSI would be 0."""
    reference = np.r_[np.zeros(390), np.full(10, 0.9)]
    assert drift.psi(reference, np.full(100, 0.95)) > drift.PSI_MAJOR


def test_decisions_follow_the_threshold_and_review_band():
    assert drift.decisions(np.array([0.1, 0.55, 0.6, 0.9]), 0.6, 0.1) == {"ai": 2, "review": 1, "real": 1}


# No subnormals: CPU inference turns on flush-to-zero for the whole process (config.device.to_device),
# and Hypothesis refuses to draw subnormal floats where they can't be represented.
SCORES = st.lists(st.floats(0, 1, allow_subnormal=False), min_size=20, max_size=200)


@settings(max_examples=50, deadline=None)
@given(SCORES, SCORES)
def test_psi_is_never_negative_and_zero_for_the_same_sample(reference, current):
    reference, current = np.array(reference), np.array(current)
    assert drift.psi(reference, current) >= 0
    assert drift.psi(reference, reference) == pytest.approx(0.0, abs=1e-12)
