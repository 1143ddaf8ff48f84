"""Storage that heals, on the tiny profile: every cache of a trained instance damaged the ways a disk
damages files, then a retrain: it succeeds, says which files it moved aside and why, and writes the
same report."""

import json
import logging
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from detector_pipeline.defs.assets import ASSETS, CHECKS
from detector_pipeline.defs.resources import pipeline_resources

pytestmark = pytest.mark.slow  # a retrain of the tiny chain

RETRAIN = ["training_labels", "label_stats", "embeddings", "probe_model", "detector", "offtheshelf_baseline",
           "evaluation_report", "shadow_comparison", "promoted_detector"]


def _zero_length(path: Path) -> None:
    path.write_bytes(b"")


def _cut_in_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _bytes_flipped(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 32):  # inside the pages, before the footer
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _wrong_schema(path: Path) -> None:
    pq.write_table(pa.table({"sha256": ["not-a-cache"], "embedding": [[1.0]]}), path)


DAMAGES = [_zero_length, _cut_in_half, _bytes_flipped, _wrong_schema]


def _figures(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "created_by"}


def test_every_damaged_cache_is_moved_aside_and_the_retrain_reports_the_same(trained, caplog):
    settings, instance = trained
    data = Path(settings.data_dir)
    before = json.loads((data / "reports" / "latest" / "report.json").read_text())
    shards = sorted((data / "cache").glob("*/*/part-*.parquet"))
    kinds = {shard.parent.parent.name for shard in shards}
    assert {"embeddings", "scores", "content-features"} <= kinds, kinds
    for number, shard in enumerate(shards):  # each cache, and each of the four kinds of damage
        DAMAGES[number % len(DAMAGES)](shard)

    with caplog.at_level(logging.WARNING):
        result = dg.materialize([*ASSETS, *CHECKS], selection=RETRAIN, resources=pipeline_resources(settings),
                                instance=instance, raise_on_error=False)
    assert result.success
    after = json.loads((data / "reports" / "latest" / "report.json").read_text())
    assert _figures(after) == _figures(before)

    moved = sorted(p.name for p in (data / "cache" / "damaged").iterdir())
    assert moved == sorted(f"{s.parent.parent.name}__{s.parent.name}__{s.name}" for s in shards)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "damaged cache" in r.getMessage()]
    for shard in shards:
        [line] = [w for w in warnings if str(shard) in w]
        assert "moved to" in line and "computed again" in line and "(" in line  # and why, in its words
