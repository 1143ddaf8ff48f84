"""The content-hash cache: values back in the order asked, appends that leave what is there alone, and
damage of every kind a disk does moved aside and computed again, with the same values."""

import logging

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector_pipeline.registry.hash_cache import DAMAGED, HashCache

DIM = 16


def _value(key: str) -> np.ndarray:
    """What `compute` gives for a hash: a fixed function of it, so a recomputed value is comparable."""
    return np.random.default_rng(abs(hash(key)) % 2**32).normal(size=DIM).astype(np.float32)


class Counting:
    def __init__(self):
        self.asked: list[str] = []

    def __call__(self, todo: list[str]) -> np.ndarray:
        self.asked += todo
        return np.stack([_value(k) for k in todo])


def _filled(tmp_path, batches=((0, 300), (300, 600))) -> tuple[HashCache, list[str]]:
    cache = HashCache(tmp_path / "cache" / "embeddings" / "emb", np.float32)
    keys = [f"{i:064x}" for i in range(batches[-1][1])]
    for start, stop in batches:
        cache.add(keys[start:stop], np.stack([_value(k) for k in keys[start:stop]]))
    return cache, keys


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.integers(0, 40), max_size=12), min_size=1, max_size=5), st.lists(st.integers(0, 40)))
def test_values_come_back_in_the_order_asked_each_content_computed_once(tmp_path_factory, batches, asked):
    cache = HashCache(tmp_path_factory.mktemp("c") / "emb", np.float32)
    compute = Counting()
    for batch in batches:
        cache.values([str(k) for k in batch], compute)
    values, computed = cache.values([str(k) for k in asked], compute)
    assert len(compute.asked) == len(set(compute.asked))  # never the same content twice
    assert set(compute.asked) == {str(k) for batch in batches for k in batch} | {str(k) for k in asked}
    if asked:
        assert np.array_equal(values, np.stack([_value(str(k)) for k in asked]))
    assert computed == len({str(k) for k in asked} - {str(k) for batch in batches for k in batch})


def test_an_addition_is_one_new_shard_and_leaves_the_others_alone(tmp_path):
    cache, keys = _filled(tmp_path)
    before = {p: p.read_bytes() for p in cache.shards()}
    values, computed = cache.values(keys[:10] + ["new-1", "new-2"], Counting())
    assert computed == 2 and len(cache.shards()) == 3
    assert all(p.read_bytes() == data for p, data in before.items())
    assert np.array_equal(values[10], _value("new-1"))


def test_a_read_takes_only_the_row_groups_that_can_hold_what_is_asked(tmp_path, monkeypatch):
    cache, keys = _filled(tmp_path, ((0, 20_000),))
    read, real = [], pq.ParquetFile.read_row_group
    monkeypatch.setattr(pq.ParquetFile, "read_row_group",
                        lambda self, group, columns=None, **kw: read.append((group, tuple(columns))) or real(self, group, columns=columns, **kw))
    assert np.array_equal(cache.get(keys[5:8]), np.stack([_value(k) for k in keys[5:8]]))
    assert read == [(0, ("sha256",)), (0, ("value",))]  # one row group of three, its values once
    read.clear()
    assert cache.missing(["f" * 64, "new"]) == ["f" * 64, "new"] and read == []  # the footer's filter rules them out


def test_the_footer_filter_rules_out_about_99_percent_of_misses_and_never_a_hit(tmp_path):
    from detector_pipeline.registry.hash_cache import _bloom, _may_hold

    keys = [f"key-{i}" for i in range(5_000)]
    bloom = _bloom(keys)
    assert _may_hold(bloom, keys) == keys  # no false negative, ever
    misses = [f"other-{i}" for i in range(20_000)]
    assert len(_may_hold(bloom, misses)) / len(misses) < 0.02


def _zero_length(path):
    path.write_bytes(b"")


def _cut_in_half(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _bytes_flipped(path):
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 64):  # inside the data pages, not the footer
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _wrong_schema(path):
    pq.write_table(pa.table({"sha256": ["a"], "embedding": [1.0]}), path)


@pytest.mark.parametrize("damage", [_zero_length, _cut_in_half, _bytes_flipped, _wrong_schema])
def test_a_damaged_shard_is_moved_aside_and_its_entries_computed_again(tmp_path, damage, caplog):
    cache, keys = _filled(tmp_path)
    damaged_shard = cache.shards()[0]
    damage(damaged_shard)
    compute = Counting()
    with caplog.at_level(logging.WARNING):
        values, computed = cache.values(keys, compute)
    assert np.array_equal(values, np.stack([_value(k) for k in keys]))  # the same figures
    assert set(compute.asked) == set(keys[:300]) and computed == 300  # only what the damaged shard held
    moved = list((tmp_path / "cache" / DAMAGED).iterdir())
    assert [p.name for p in moved] == [f"embeddings__emb__{damaged_shard.name}"] and not damaged_shard.exists()
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert str(damaged_shard) in line and "computed again" in line
    assert cache.values(keys, compute)[1] == 0  # healed: the next run computes nothing


def test_a_cache_of_the_older_layout_becomes_a_shard(tmp_path):
    legacy = tmp_path / "scores" / "detector-v1.parquet"
    legacy.parent.mkdir()
    pq.write_table(pa.table({"sha256": ["a", "b"], "score": [0.25, 0.75]}), legacy)
    cache = HashCache(legacy.with_suffix(""), np.float64)
    cache.adopt(legacy, "score")
    assert not legacy.exists() and len(cache.shards()) == 1
    assert cache.get(["b", "a"]).ravel().tolist() == [0.75, 0.25]


def test_compaction_merges_the_shards_and_keeps_every_value(tmp_path):
    cache, keys = _filled(tmp_path, ((0, 100), (100, 200), (150, 250)))
    assert cache.compact() == 3 and len(cache.shards()) == 1
    assert np.array_equal(cache.get(keys), np.stack([_value(k) for k in keys]))


def test_a_hash_the_cache_lacks_is_a_key_error_that_names_it(tmp_path):
    cache, _ = _filled(tmp_path, ((0, 5),))
    with pytest.raises(KeyError, match="not-there"):
        cache.get(["not-there"])
