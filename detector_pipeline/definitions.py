"""The Dagster code location: `dagster dev` / `dg dev` load `defs` from here.

DETECTOR_EXECUTOR chooses how a run's steps execute, per deployment:
- `in_process`: one process runs the steps one after another. On a small machine (the default below 8
  cores) a process per step costs ~14 s of imports each and lets training and scoring fight over the
  same cores (README: Performance, "Retrains").
- `multiprocess`: a process per step, steps in parallel (the default from 8 cores).
- `k8s` (set in deploy/Dockerfile): each step its own Kubernetes pod.
"""

import dagster as dg

from detector_pipeline.config.environment import EXECUTORS, Environment, read_environment
from detector_pipeline.defs.assets import ASSETS, CHECKS
from detector_pipeline.defs.jobs import (
    ablations_job,
    report_job,
    retrain_job,
    retrain_on_batch_job,
    score_feed_job,
    validate_batch_job,
    validate_verdicts_job,
)
from detector_pipeline.defs.resources import PipelineSettings, pipeline_resources
from detector_pipeline.defs.run_health import runs_whose_worker_died
from detector_pipeline.defs.schedules import nightly_retrain
from detector_pipeline.defs.sensors import new_label_batches, new_verdict_files
from detector_pipeline.registry.durable import remove_stale_partials


def executor(choice: str) -> dg.ExecutorDefinition:
    if choice == "in_process":
        return dg.in_process_executor
    if choice == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    if choice == "multiprocess":
        return dg.multiprocess_executor
    raise ValueError(f"DETECTOR_EXECUTOR must be one of {', '.join(EXECUTORS)}, not {choice!r}")


def build_defs(environment: Environment) -> dg.Definitions:
    """The code location for one resolved environment; the CLI's `run --profile` builds its own."""
    remove_stale_partials(environment.data_dir)  # of writes killed before they finished
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        jobs=[validate_batch_job, validate_verdicts_job, retrain_on_batch_job, retrain_job, score_feed_job, ablations_job, report_job],
        sensors=[new_label_batches, new_verdict_files, runs_whose_worker_died],
        schedules=[nightly_retrain(environment.retrain_cron)],
        resources=pipeline_resources(PipelineSettings.of(environment)),
        executor=executor(environment.executor),
    )


defs = build_defs(read_environment())
