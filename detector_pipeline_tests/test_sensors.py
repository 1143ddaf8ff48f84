"""New label batches: one partition and one run per complete batch, nothing twice, bad ones skipped."""

from pathlib import Path

import dagster as dg
import pandas as pd

from detector_pipeline.batches import READY_MARKER
from detector_pipeline.resources import PipelineSettings
from detector_pipeline.sensors import new_label_batches
from detector_pipeline_tests.conftest import write_tiny_dataset


def _batch(incoming: Path, name: str, ready: bool = True) -> Path:
    folder = incoming / name
    write_tiny_dataset(folder, n=8, seed=hash(name) % 1000)
    (folder / "img").rename(folder / "images")
    labels = pd.read_parquet(folder / "labels.parquet")
    labels["image_path"] = labels["image_path"].str.replace("img/", "images/")
    labels.to_parquet(folder / "labels.parquet")
    if ready:
        (folder / READY_MARKER).touch()
    return folder


def _tick(instance, settings, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"settings": settings})
    return new_label_batches(context)


def _settings(tmp_path: Path) -> PipelineSettings:
    return PipelineSettings(incoming_dir=str(tmp_path / "incoming"), data_dir=str(tmp_path / "data"))


def test_a_new_batch_gives_one_partition_and_one_run_and_only_once(tmp_path):
    _batch(tmp_path / "incoming", "2026-11-27-a")
    instance = dg.DagsterInstance.ephemeral()
    settings = _settings(tmp_path)
    first = _tick(instance, settings)
    assert [r.partition_key for r in first.run_requests] == ["2026-11-27-a"]
    assert [list(r.partition_keys) for r in first.dynamic_partitions_requests] == [["2026-11-27-a"]]
    instance.add_dynamic_partitions("label_batches", ["2026-11-27-a"])  # what the daemon does with the request
    second = _tick(instance, settings, first.cursor)
    assert not second.run_requests and not second.dynamic_partitions_requests
    assert "no new complete batch" in second.skip_reason.skip_message


def test_a_batch_still_being_copied_is_left_alone(tmp_path):
    _batch(tmp_path / "incoming", "half", ready=False)
    result = _tick(dg.DagsterInstance.ephemeral(), _settings(tmp_path))
    assert not result.run_requests
    assert READY_MARKER in result.skip_reason.skip_message


def test_a_malformed_batch_is_skipped_with_its_reason_and_later_batches_go_on(tmp_path):
    incoming = tmp_path / "incoming"
    broken = incoming / "broken"
    broken.mkdir(parents=True)
    (broken / "labels.parquet").write_bytes(b"not a parquet file")
    (broken / READY_MARKER).touch()
    no_scores = _batch(incoming, "no-scores")
    pd.read_parquet(no_scores / "labels.parquet").drop(columns="ai_score").to_parquet(no_scores / "labels.parquet")
    _batch(incoming, "good")
    instance = dg.DagsterInstance.ephemeral()
    result = _tick(instance, _settings(tmp_path))
    assert [r.partition_key for r in result.run_requests] == ["good"]
    instance.add_dynamic_partitions("label_batches", ["good"])
    again = _tick(instance, _settings(tmp_path), result.cursor)
    message = again.skip_reason.skip_message
    assert "'broken': unreadable labels parquet" in message and "'no-scores'" in message and "ai_score" in message
