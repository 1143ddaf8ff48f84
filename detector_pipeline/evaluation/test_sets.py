"""The test split, cut into the questions it can answer.

- `test_in_distribution`: every row of the test split except the images of generator families held
  out of training. The article's claims are about this one.
- `test_held_out`: the held-out families' images against the in-distribution test's real images: how
  the models transfer to a generator they never saw.
- real images from sources held out of training (`source_held_out`): how often real photographs of a
  kind the models never saw are called AI.
"""

import numpy as np
import pandas as pd

IN_DISTRIBUTION = "test_in_distribution"
HELD_OUT = "test_held_out"
WHOLE_SPLIT = "test_split"  # every row of the labels' test split: the slices and the off-the-shelf detectors
DESCRIPTIONS = {
    IN_DISTRIBUTION: "in-distribution test (generator families seen in training)",
    HELD_OUT: "held-out generator families against the in-distribution test's real images",
}


def _flag(table: pd.DataFrame, column: str) -> np.ndarray:
    if column not in table.columns:
        return np.zeros(len(table), dtype=bool)
    return table[column].fillna(False).astype(bool).to_numpy()


def known_real(table: pd.DataFrame) -> np.ndarray:
    """Rows whose ground truth says real; rows without ground truth are neither real nor AI."""
    if "is_ai" not in table.columns:
        return np.zeros(len(table), dtype=bool)
    return (table["is_ai"] == False).fillna(False).to_numpy(dtype=bool)  # noqa: E712 (nullable boolean)


def known_ai(table: pd.DataFrame) -> np.ndarray:
    if "is_ai" not in table.columns:
        return np.zeros(len(table), dtype=bool)
    return (table["is_ai"] == True).fillna(False).to_numpy(dtype=bool)  # noqa: E712 (nullable boolean)


def test_set_masks(test: pd.DataFrame) -> dict[str, np.ndarray]:
    """Row masks over the whole test split. `test_held_out` is present only where a held-out family has
    test rows and there are real images to hold them against."""
    held_out_family = _flag(test, "family_held_out")
    masks = {IN_DISTRIBUTION: ~held_out_family}
    real_in_distribution = known_real(test) & ~held_out_family
    if held_out_family.any() and real_in_distribution.any():
        masks[HELD_OUT] = held_out_family | real_in_distribution
    return masks


def real_from_held_out_sources(test: pd.DataFrame) -> np.ndarray:
    """Real test images (ground truth) whose source was kept out of training as a whole."""
    return known_real(test) & _flag(test, "source_held_out")
