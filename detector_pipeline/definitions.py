"""The Dagster code location: `dagster dev` / `dg dev` load `defs` from here.

DETECTOR_EXECUTOR=k8s (set in deploy/Dockerfile) runs each step as its own Kubernetes pod; the default,
multiprocess, runs them as processes of the run's machine.
"""

import os

import dagster as dg

from detector_pipeline.defs.assets import ASSETS, CHECKS
from detector_pipeline.defs.jobs import (
    ablations_job,
    report_job,
    retrain_job,
    retrain_on_batch_job,
    score_feed_job,
    validate_batch_job,
)
from detector_pipeline.defs.resources import PipelineSettings
from detector_pipeline.defs.schedules import nightly_retrain
from detector_pipeline.defs.sensors import new_label_batches


def executor() -> dg.ExecutorDefinition:
    choice = os.environ.get("DETECTOR_EXECUTOR", "multiprocess")
    if choice == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    if choice == "multiprocess":
        return dg.multiprocess_executor
    raise ValueError(f"DETECTOR_EXECUTOR must be multiprocess or k8s, not {choice!r}")


defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    jobs=[validate_batch_job, retrain_on_batch_job, retrain_job, score_feed_job, ablations_job, report_job],
    sensors=[new_label_batches],
    schedules=[nightly_retrain],
    resources={"settings": PipelineSettings.from_env()},
    executor=executor(),
)
