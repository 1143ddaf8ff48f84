import numpy as np
import pytest

from detector_pipeline.data.label_stats import LabelStats, pos_weight, score_shape


def test_pos_weight_is_negatives_over_positives():
    assert pos_weight(0.11) == pytest.approx(0.89 / 0.11)
    assert pos_weight(0.5) == 1.0


@pytest.mark.parametrize("share", [0.0, 1.0, -0.1])
def test_pos_weight_refuses_degenerate_shares(share):
    with pytest.raises(ValueError):
        pos_weight(share)


def test_score_shape():
    shape = score_shape(np.array([0.0] * 75 + [0.3] * 14 + [0.9] * 11))
    assert shape.share_below_0_1 == 0.75 and shape.share_at_or_above_0_5 == 0.11 and shape.positives == 11


def test_the_one_pos_weight_is_the_train_splits():
    stats = LabelStats(all_splits=score_shape(np.array([0.0] * 50 + [0.9] * 50)),
                       train=score_shape(np.array([0.0] * 89 + [0.9] * 11)), labels_version="0" * 16)
    assert stats.pos_weight == pytest.approx(89 / 11)


def test_a_train_split_without_positives_has_no_pos_weight():
    assert LabelStats(score_shape(np.zeros(10)), score_shape(np.zeros(10)), "0" * 16).pos_weight is None
