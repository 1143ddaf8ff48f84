"""The chain on a Dagster instance configured by deploy/dagster.yaml, backed by a real PostgreSQL:
runs, materializations, the gpu pool, the sensor's cursor and dynamic partitions (through the
daemon's own sensor iteration), and the lineage query."""

import json
import logging
import shutil
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.sensor import execute_sensor_iteration

from detector_pipeline.data.batches import BASE_BATCH, READY_MARKER
from detector_pipeline.registry.lineage import lineage
from detector_pipeline_tests.helpers import PROJECT_ROOT, materialize_base, write_tiny_dataset
from detector_pipeline_tests.postgres_cluster import running_cluster

pytestmark = pytest.mark.slow  # starts a PostgreSQL cluster and trains the chain on it


@pytest.fixture(scope="module")
def postgres():
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_instance(postgres, tmp_path, monkeypatch):
    for name, value in postgres.env().items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "deploy/dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance
        instance.wipe()


def _sensor_tick(instance: dg.DagsterInstance) -> None:
    """One iteration of the daemon's sensor loop over the project's code location."""
    target = ModuleTarget(module_name="detector_pipeline.definitions", attribute="defs",
                          working_directory=str(PROJECT_ROOT), location_name="detector_pipeline")
    with create_test_daemon_workspace_context(target, instance) as workspace:
        list(execute_sensor_iteration(workspace, logging.getLogger("sensor"), None, None))


def _sensor_cursor(instance: dg.DagsterInstance) -> str | None:
    states = [s for s in instance.all_instigator_state() if s.name == "new_label_batches"]
    return states[0].instigator_data.cursor if states else None


def test_the_chain_runs_on_postgres(pg_instance, tiny_settings, monkeypatch):
    instance = pg_instance
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"

    result = materialize_base(tiny_settings, instance)
    assert result.success
    assert instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.SUCCESS
    for key in ("teacher_labels", "embeddings", "probe_model", "detector", "evaluation_report", "promoted_detector"):
        assert instance.get_latest_materialization_event(dg.AssetKey(key)) is not None, key
    assert instance.get_dynamic_partitions("label_batches") == [BASE_BATCH]
    # The gpu pool took its slot from deploy/dagster.yaml's default limit, and gave it back.
    pool = instance.event_log_storage.get_concurrency_info("gpu")
    assert pool.slot_count == 1 and pool.active_slot_count == 0

    # The sensor, as the daemon runs it: a complete batch -> a partition, a queued run, a stored cursor.
    for name, value in {"DETECTOR_PROFILE": "tiny", "DETECTOR_INCOMING_DIR": tiny_settings.incoming_dir,
                        "DETECTOR_DATA_DIR": tiny_settings.data_dir, "DETECTOR_DEVICE": "cpu"}.items():
        monkeypatch.setenv(name, value)
    incoming = Path(tiny_settings.incoming_dir)
    write_tiny_dataset(incoming / "b1", n=8, seed=3)
    (incoming / "b1" / READY_MARKER).touch()
    (incoming / "broken").mkdir()
    (incoming / "broken" / READY_MARKER).touch()
    _sensor_tick(instance)
    assert set(instance.get_dynamic_partitions("label_batches")) == {BASE_BATCH, "b1"}
    queued = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))
    assert [run.tags.get("dagster/partition") for run in queued] == ["b1"]
    assert json.loads(_sensor_cursor(instance))["malformed"] == ["broken"]
    _sensor_tick(instance)  # the same batches again: nothing new
    assert len(instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))) == 1

    # Lineage from the detector version back to its label batch, read from Postgres.
    version = result.output_for_node("detector").version
    walk = lineage(instance, version)
    assert walk["detector"]["run_id"] == result.run_id
    assert [b["batch"] for b in walk["label_batches"]] == [BASE_BATCH]
