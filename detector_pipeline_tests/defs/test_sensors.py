"""New label batches: one partition and one validation run per complete batch, nothing twice, bad ones
skipped; batches that arrive together or during a retrain lead to one retrain."""

import zlib
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from detector_pipeline.cli.runs import run_outcome
from detector_pipeline.data.batches import READY_MARKER
from detector_pipeline.defs.assets import ASSETS, CHECKS
from detector_pipeline.defs.jobs import RETRAIN_TAGS, retrain_job, validate_batch_job
from detector_pipeline.defs.resources import PipelineSettings, pipeline_resources
from detector_pipeline.defs.schedules import current_batch_versions
from detector_pipeline.defs.sensors import new_label_batches
from detector_pipeline_tests.helpers import write_tiny_dataset


def _batch(incoming: Path, name: str, ready: bool = True) -> Path:
    folder = incoming / name
    write_tiny_dataset(folder, n=8, seed=zlib.crc32(name.encode()) % 1000)  # hash() changes per process
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


def _carry_out(instance, settings, result) -> None:
    """What the daemon does with a tick: add the partitions, then run each requested run."""
    defs = dg.Definitions(assets=ASSETS, asset_checks=CHECKS, jobs=[validate_batch_job, retrain_job],
                          resources=pipeline_resources(settings))
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    for run in result.run_requests:
        outcome = defs.resolve_job_def(run.job_name).execute_in_process(
            instance=instance, partition_key=run.partition_key, tags=run.tags, raise_on_error=False)
        # The sensor is under test, not the tiny candidate: a retrain whose candidate the promotion gate
        # refuses (tiny models on random pixels differ by noise) has still run; a step that raised has not.
        refusals, errors = run_outcome(outcome)
        assert outcome.success or (refusals and not errors), errors


def _retrain_runs(instance) -> int:
    return len(instance.get_run_ids(filters=dg.RunsFilter(tags=RETRAIN_TAGS)))


@pytest.mark.slow  # trains on the base labels, then a retrain run
def test_a_burst_of_batches_gives_a_partition_each_and_one_retrain(trained):
    settings, instance = trained
    names = [f"burst-{i}" for i in range(5)]
    for name in names:
        _batch(Path(settings.incoming_dir), name)
    first = _tick(instance, settings)
    assert sorted(r.partition_key for r in first.run_requests) == names
    assert {r.job_name for r in first.run_requests} == {"validate_batch"}
    _carry_out(instance, settings, first)
    assert set(current_batch_versions(instance)) == {"base", *names}  # five validated partitions

    second = _tick(instance, settings, first.cursor)
    assert [r.job_name for r in second.run_requests] == ["retrain"]
    assert all(name in second.run_requests[0].tags["retrain_reason"] for name in names)
    _carry_out(instance, settings, second)
    third = _tick(instance, settings, second.cursor)
    assert not third.run_requests and _retrain_runs(instance) == 1


@pytest.mark.slow  # trains on the base labels, then a retrain run
def test_a_batch_dropped_during_a_retrain_leads_to_exactly_one_more(trained):
    settings, instance = trained
    running = dg.DagsterRun(job_name="retrain", run_id="0" * 8 + "-0000-0000-0000-" + "0" * 12,
                            status=dg.DagsterRunStatus.STARTED, tags=RETRAIN_TAGS)
    instance.add_run(running)
    _batch(Path(settings.incoming_dir), "late")
    first = _tick(instance, settings)
    assert [(r.job_name, r.partition_key) for r in first.run_requests] == [("validate_batch", "late")]
    _carry_out(instance, settings, first)
    while_running = _tick(instance, settings, first.cursor)
    assert not while_running.run_requests and "a retrain is running" in while_running.skip_reason.skip_message

    instance.report_run_canceled(running)
    after = _tick(instance, settings, while_running.cursor)
    assert [r.job_name for r in after.run_requests] == ["retrain"] and "late" in after.run_requests[0].tags["retrain_reason"]
    _carry_out(instance, settings, after)
    assert not _tick(instance, settings, after.cursor).run_requests
    assert _retrain_runs(instance) == 2  # the one that was running, and exactly one more
