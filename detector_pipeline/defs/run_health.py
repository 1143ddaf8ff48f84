"""Runs whose worker died. With Dagster's default run launcher (one machine: `dagster dev`, the
daemon beside the webserver) a run worker killed by SIGKILL, an out-of-memory kill or a restarted
machine leaves its run STARTED for ever: that launcher can't tell Dagster's run monitoring whether a
worker lives. Such a run holds the retrain queue (one retrain at a time) and its batches never reach
a model. This sensor looks for the worker's pid in the run's events and marks the run failed when
that process is gone, as an unexpected termination, and gives back its pool slots; the instance's
run_retries then starts it again from the step that was cut off. Other launchers (Kubernetes, ECS,
Docker) check their own workers, and an instance on shared storage (PostgreSQL) may have workers on
other machines, whose pids mean nothing here: there it does nothing and says so
(deploy/dagster.yaml: use a launcher that checks its workers, with run_monitoring)."""

import time

import dagster as dg
from dagster._core.events import DagsterEventType, JobFailureData, RunFailureReason
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.storage.runs import SqliteRunStorage

from detector_pipeline.registry.processes import still_running

WORKER_STARTED = "Started process for run (pid: "
WATCHED = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def worker_of(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The pid of the run's latest worker and when it reported in (a resumed run has several)."""
    started = [entry for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)
               if entry.dagster_event is not None and entry.dagster_event.message
               and entry.dagster_event.message.startswith(WORKER_STARTED)]
    if not started:
        return None
    pid = started[-1].dagster_event.engine_event_data.metadata.get("pid")
    return (int(pid.value), started[-1].timestamp) if pid is not None else None


def fail_runs_whose_worker_died(instance: dg.DagsterInstance) -> tuple[list[str], str]:
    """Marks each STARTED (or CANCELING) run whose worker process is gone failed; returns their ids and
    a line for the sensor's tick."""
    if not isinstance(instance.run_launcher, DefaultRunLauncher):
        return [], f"{type(instance.run_launcher).__name__} checks its own run workers"
    if not isinstance(instance.run_storage, SqliteRunStorage):
        return [], (f"runs stored in {type(instance.run_storage).__name__} may have workers on other machines: "
                    "their pids can't be checked here")
    records = instance.get_run_records(filters=dg.RunsFilter(statuses=WATCHED))
    failed = []
    for record in records:
        worker = worker_of(instance, record.dagster_run.run_id)
        if worker is None or still_running(*worker):
            continue
        pid, since = worker
        instance.report_run_failed(
            record.dagster_run,
            f"its run worker (pid {pid}, up since {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(since))} UTC) "
            "is gone: killed (SIGKILL, out of memory, a restarted machine) before it could report; marked failed "
            "so that run_retries can start it again from the step that was cut off",
            JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION))
        if instance.event_log_storage.supports_global_concurrency_limits:
            # Its pool slots (gpu) now, not when run monitoring next sweeps: the retry needs them.
            instance.event_log_storage.free_concurrency_slots_for_run(record.dagster_run.run_id)
        failed.append(record.dagster_run.run_id)
    if failed:
        return failed, f"marked {len(failed)} run(s) whose worker is gone as failed: {', '.join(failed)}"
    return [], f"the worker of each of the {len(records)} run(s) in flight is alive"


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def runs_whose_worker_died(context: dg.SensorEvaluationContext):
    """Marks failed the runs whose worker process was killed (default run launcher only), so that
    the retrain queue moves and run_retries starts them again."""
    failed, why = fail_runs_whose_worker_died(context.instance)
    for run_id in failed:
        context.log.warning(f"run {run_id}: its worker is gone; marked failed")
    return dg.SkipReason(why)
