import numpy as np
import pytest

from detector_pipeline.data.label_stats import label_stats, pos_weight


def test_pos_weight_is_negatives_over_positives():
    assert pos_weight(0.11) == pytest.approx(0.89 / 0.11)
    assert pos_weight(0.5) == 1.0


@pytest.mark.parametrize("share", [0.0, 1.0, -0.1])
def test_pos_weight_refuses_degenerate_shares(share):
    with pytest.raises(ValueError):
        pos_weight(share)


def test_label_stats_shape():
    scores = np.array([0.0] * 75 + [0.3] * 14 + [0.9] * 11)
    stats = label_stats(scores)
    assert stats["share_below_0_1"] == 0.75
    assert stats["share_at_or_above_0_5"] == 0.11
    assert stats["positives"] == 11
    assert stats["pos_weight"] == pytest.approx(89 / 11)


def test_label_stats_without_positives_has_no_pos_weight():
    assert label_stats(np.zeros(10))["pos_weight"] is None
