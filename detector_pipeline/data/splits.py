"""Deterministic train / val / test split by source group: one source never lands in two splits.

A group's split depends only on its id and the seed, so it never moves when new data arrives.
"""

import hashlib
from pathlib import Path

import pandas as pd

SPLITS = ("train", "val", "test")


def group_fraction(group: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(
    groups: pd.Series, seed: int = 0, val: float = 0.15, test: float = 0.15, forced_test: pd.Series | None = None
) -> pd.Series:
    """Split per row. Groups holding any `forced_test` row (a generator family or a source of real
    images held out of training) go to test whole."""
    test_groups = set(groups[forced_test.astype(bool)]) if forced_test is not None else set()

    def split_of(group: str) -> str:
        if group in test_groups:
            return "test"
        u = group_fraction(group, seed)
        return "train" if u < 1 - val - test else "val" if u < 1 - test else "test"

    return groups.astype(str).map(split_of)


HELD_OUT_FLAGS = ("family_held_out", "source_held_out")  # a generator family, a source of real images


def held_out_rows(table: pd.DataFrame) -> pd.Series | None:
    """Rows held out of training by the labels themselves; their groups go to test whole."""
    flags = [table[c].fillna(False).astype(bool) for c in HELD_OUT_FLAGS if c in table.columns]
    if not flags:
        return None
    held_out = flags[0]
    for flag in flags[1:]:
        held_out = held_out | flag
    return held_out


def held_out_groups_to_test(table: pd.DataFrame) -> pd.DataFrame:
    """Batches get their splits one at a time: a source group that a held-out row sent to test in one
    batch may come back in a later batch without one, and would be hashed to train or val there. Over
    all batches, every row of such a group goes to test."""
    held_out = held_out_rows(table)
    if held_out is None:
        return table
    groups = group_column(table)
    forced = set(groups[held_out])
    return table.assign(split=table["split"].where(~groups.isin(forced), "test"))


def group_column(table: pd.DataFrame) -> pd.Series:
    """`source_group` where the labels have it, else each image is its own group."""
    if "source_group" in table.columns:
        return table["source_group"].fillna(table["sha256"]).astype(str)
    return table["sha256"].astype(str)


def rows_in(labels: pd.DataFrame, split: str) -> pd.DataFrame:
    return labels[labels["split"] == split]


def image_files(labels: pd.DataFrame) -> list[Path]:
    return [Path(f) for f in labels["file"]]
