"""The test split cut into in-distribution, held-out families and real images from held-out sources."""

import numpy as np
import pandas as pd

from detector_pipeline.evaluation import test_sets


def test_held_out_families_are_held_against_the_in_distribution_real_images_only():
    test = pd.DataFrame({
        "is_ai": pd.array([False, False, True, True, True, None], dtype="boolean"),
        "family_held_out": [False, False, False, True, True, False],
        "source_held_out": [False, True, False, False, False, False],
    })
    masks = test_sets.test_set_masks(test)
    assert masks["test_in_distribution"].tolist() == [True, True, True, False, False, True]
    assert masks["test_held_out"].tolist() == [True, True, False, True, True, False]
    assert test_sets.real_from_held_out_sources(test).tolist() == [False, True, False, False, False, False]


def test_labels_without_a_held_out_family_have_only_the_in_distribution_test():
    test = pd.DataFrame({"ai_score": np.linspace(0, 1, 5)})
    masks = test_sets.test_set_masks(test)
    assert set(masks) == {"test_in_distribution"} and masks["test_in_distribution"].all()
    assert not test_sets.real_from_held_out_sources(test).any()
