"""The production loop killed hard: `dagster dev` (webserver, daemon, code server and the run worker)
gets SIGKILL in the middle of a retrain while label batches arrive, then starts again."""

import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import DagsterEventType

from detector_pipeline.data.batches import READY_MARKER
from detector_pipeline.defs.run_health import WORKER_STARTED
from detector_pipeline.registry import pointer as registry
from detector_pipeline.config.profiles import get_profile
from detector_pipeline.tasks.models import detector_scorer
from detector_pipeline_tests import dagster_dev
from detector_pipeline_tests.helpers import PROJECT_ROOT, write_tiny_dataset

pytestmark = [pytest.mark.slow, pytest.mark.kill]


def _batch(incoming: Path, name: str, labels: Path, rows: slice) -> None:
    """Some new images as a label batch with its `_READY` marker."""
    import pandas as pd

    folder = incoming / name
    table = pd.read_parquet(labels).iloc[rows]
    for path in table["image_path"]:
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(labels.parent / path, folder / path)
    table.to_parquet(folder / "labels.parquet", index=False)
    (folder / READY_MARKER).touch()


def _retrains(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return sorted(instance.get_runs(filters=dg.RunsFilter(job_name="retrain")), key=lambda r: r.run_id)


def _training_started(instance: dg.DagsterInstance) -> dg.DagsterRun | None:
    """A retrain whose worker reported in and whose `detector` step (the training) has begun."""
    for run in instance.get_runs(filters=dg.RunsFilter(job_name="retrain", statuses=[dg.DagsterRunStatus.STARTED])):
        steps = instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_START)
        if any(e.dagster_event.step_key == "detector" for e in steps):
            return run
    return None


def _locks_held(data: Path) -> list[str]:
    """Every lock file under the data folder that can't be taken without waiting: one held by a dead
    process would refuse."""
    held = []
    for path in data.rglob("*.lock"):
        with open(path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(handle, fcntl.LOCK_UN)
            except BlockingIOError:
                held.append(str(path))
    return held


def test_a_daemon_killed_mid_retrain_loses_no_batch_and_the_cut_off_run_is_retried(tmp_path):
    labels = write_tiny_dataset(tmp_path / "data")
    home, data, incoming = tmp_path / "dagster_home", tmp_path / "artifacts", tmp_path / "incoming"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.local.yaml", home / "dagster.yaml")  # as `make ui` does
    env = {**os.environ, "DAGSTER_HOME": str(home), "DETECTOR_PROFILE": "tiny", "DETECTOR_LABELS": str(labels),
           "DETECTOR_IMAGES_ROOT": str(labels.parent), "DETECTOR_DATA_DIR": str(data), "DETECTOR_DEVICE": "cpu",
           "DETECTOR_FEED_DIR": str(labels.parent / "img"), "DETECTOR_INCOMING_DIR": str(incoming)}
    subprocess.run([str(Path(sys.executable).parent / "detector-pipeline"), "init"], env=env, check=True)
    new_images = write_tiny_dataset(tmp_path / "new", n=32, seed=1)
    _batch(incoming, "b1", new_images, slice(0, 16))
    log = tmp_path / "dagster_dev.log"

    # The sensors validate the base batch and b1, then start one retrain; it is killed while training,
    # just after b2 arrived.
    process, _ = dagster_dev.start(env, log)
    try:
        killed = dagster_dev.wait_until(home, _training_started, 420, "no retrain reached its training step", every=0.5)
        _batch(incoming, "b2", new_images, slice(16, 32))
        time.sleep(1)
    finally:
        pids = dagster_dev.kill_hard(process)
    with dagster_dev.instance_at(home) as instance:
        worker = [e for e in instance.all_logs(killed.run_id, of_type=DagsterEventType.ENGINE_EVENT)
                  if (e.dagster_event.message or "").startswith(WORKER_STARTED)]
        assert worker and int(worker[-1].dagster_event.engine_event_data.metadata["pid"].value) in pids
        assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.STARTED  # nobody said otherwise
    assert _locks_held(data) == []  # flock dies with its holder
    assert registry.read_promoted(data) is None  # nothing half-promoted: the first model never got there

    # Restarted: the killed run is marked failed and retried from its training step, b2 is validated,
    # and one more retrain takes it.
    process, _ = dagster_dev.start(env, log)
    try:
        def settled(instance):
            runs = instance.get_runs()
            b2_trained = any("b2" in (e.asset_materialization.metadata["label_batches"].value or {})
                             for e in [instance.get_latest_materialization_event(dg.AssetKey("detector"))] if e)
            return runs if b2_trained and all(r.is_finished for r in runs) else None

        runs = dagster_dev.wait_until(home, settled, 600, "b2 never reached a trained detector")
    finally:
        dagster_dev.stop(process)

    with dagster_dev.instance_at(home) as instance:
        cut_off = instance.get_run_by_id(killed.run_id)
        assert cut_off.status == dg.DagsterRunStatus.FAILURE
        failure = instance.all_logs(killed.run_id, of_type=DagsterEventType.PIPELINE_FAILURE)[-1]
        assert "its run worker (pid" in failure.dagster_event.message and "is gone" in failure.dagster_event.message
        retry = [r for r in runs if r.parent_run_id == killed.run_id]
        assert len(retry) == 1 and retry[0].status == dg.DagsterRunStatus.SUCCESS
        # Every batch validated exactly once, killed or not.
        validated = {}
        for run in runs:
            if run.job_name == "validate_batch" and run.status == dg.DagsterRunStatus.SUCCESS:
                key = run.tags["dagster/partition"]
                validated[key] = validated.get(key, 0) + 1
        assert validated == {"base": 1, "b1": 1, "b2": 1}
        assert [r.status for r in runs if r.run_id != killed.run_id] == [dg.DagsterRunStatus.SUCCESS] * (len(runs) - 1)
        trained_from = instance.get_latest_materialization_event(dg.AssetKey("detector")).asset_materialization
        assert set(trained_from.metadata["label_batches"].value) == {"base", "b1", "b2"}
    assert (data / "registry/.lock").exists() and _locks_held(data) == []
    record, folder = registry.promoted_model(data)
    detector_scorer(folder, get_profile("tiny", data / "weights"))  # the folder is whole: its weights load and verify
    assert record.version == folder.name
