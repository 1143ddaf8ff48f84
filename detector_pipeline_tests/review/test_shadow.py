"""Shadow scoring: flips counted per direction, agreement, and the WARN when the feed changes far more
than validation predicts."""

import numpy as np

from detector_pipeline.review import shadow


def _compare(p_old, p_new, val_old, val_new):
    paths = [f"feed/{i}.jpg" for i in range(len(p_old))]
    return shadow.compare("new", "old", paths, [f"h{i}" for i in range(len(p_old))], np.asarray(p_old), 0.5,
                          np.asarray(p_new), 0.6, np.asarray(val_old), np.asarray(val_new))


def test_flips_are_counted_per_direction_at_each_models_threshold():
    p_old = [0.9, 0.9, 0.2, 0.2, 0.55, 0.1]
    p_new = [0.9, 0.3, 0.7, 0.2, 0.55, 0.1]  # 0.55 is ai for the champion (0.5), not for the challenger (0.6)
    result = _compare(p_old, p_new, [True, False] * 50, [True, False] * 50)
    assert (result.changed, result.real_to_ai, result.ai_to_real, result.feed_images) == (3, 1, 2, 6)
    assert result.agreement == 0.5
    assert result.line() == "would change 3 of 6 feed decisions: 1 real→AI, 2 AI→real (champion old, challenger new)"
    assert [f["direction"] for f in result.biggest_flips] == ["AI→real", "real→AI", "AI→real"]
    assert result.surprising  # 50 % of the feed against 0 % of 100 validation images


def test_flips_in_line_with_validation_are_not_surprising():
    rng = np.random.default_rng(0)
    p_old = rng.random(1000)
    p_new = np.where(rng.random(1000) < 0.05, 1 - p_old, p_old)
    val_old = rng.random(400) < 0.3
    val_new = np.where(rng.random(400) < 0.06, ~val_old, val_old)
    result = shadow.compare("new", "old", [str(i) for i in range(1000)], [str(i) for i in range(1000)], p_old, 0.5,
                            p_new, 0.5, val_old, val_new)
    assert not result.surprising and 0 < result.changed < 100
    assert result.validation_flip_share_ci95[0] < result.validation_flip_share < result.validation_flip_share_ci95[1]


def test_nothing_to_compare_says_why():
    result = shadow.not_compared("new", None, "no champion promoted yet, so no decision can change")
    assert not result.compared and result.line() == "shadow scoring: no champion promoted yet, so no decision can change"


def test_most_of_the_feed_changing_warns_even_when_validation_changed_as_much():
    """A teacher wrong everywhere takes validation with it: validation predicts the flips it causes."""
    rng = np.random.default_rng(1)
    p_old = rng.random(500)
    val_old = rng.random(300) < 0.3
    result = shadow.compare("new", "old", [str(i) for i in range(500)], [str(i) for i in range(500)], p_old, 0.5,
                            1 - p_old, 0.5, val_old, ~val_old)
    assert result.validation_flip_share == 1.0 and result.changed == 500
    assert result.surprising and "more than 25% whatever validation predicts" in result.why
