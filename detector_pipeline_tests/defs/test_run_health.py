"""Runs whose worker died are marked failed (unexpected termination, so run_retries starts them
again); runs whose worker lives are left alone."""

import os
import subprocess
import sys

import dagster as dg
from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData

from detector_pipeline.defs.run_health import fail_runs_whose_worker_died


@dg.op
def noop() -> None:
    pass


@dg.job
def a_job():
    noop()


def _started_run(instance: dg.DagsterInstance, pid: int) -> str:
    run = instance.create_run_for_job(a_job)
    instance.report_dagster_event(DagsterEvent(DagsterEventType.PIPELINE_START.value, job_name=a_job.name), run.run_id)
    instance.report_engine_event(f"Started process for run (pid: {pid}).", instance.get_run_by_id(run.run_id),
                                 EngineEventData.in_process(pid))
    return run.run_id


def test_a_run_whose_worker_is_gone_is_failed_and_one_whose_worker_lives_is_not():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with dg.instance_for_test() as instance:
        killed, alive = _started_run(instance, dead.pid), _started_run(instance, os.getpid())
        failed, why = fail_runs_whose_worker_died(instance)
        assert failed == [killed] and "marked 1 run(s) whose worker is gone" in why
        assert instance.get_run_by_id(killed).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(killed).tags.get("dagster/failure_reason") == "UNEXPECTED_TERMINATION"
        assert instance.get_run_by_id(alive).status == dg.DagsterRunStatus.STARTED
        message = instance.all_logs(killed, of_type=DagsterEventType.PIPELINE_FAILURE)[-1].dagster_event.message
        assert f"its run worker (pid {dead.pid}" in message and "is gone" in message
        assert fail_runs_whose_worker_died(instance) == ([], "the worker of each of the 1 run(s) in flight is alive")
