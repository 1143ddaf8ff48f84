"""The Dagster code location: `dagster dev` / `dg dev` load `defs` from here."""

import dagster as dg

from detector_pipeline.assets import ASSETS, CHECKS
from detector_pipeline.jobs import ablations_job, report_job, retrain_job, retrain_on_batch_job, score_feed_job
from detector_pipeline.resources import PipelineSettings
from detector_pipeline.schedules import nightly_retrain
from detector_pipeline.sensors import new_label_batches

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    jobs=[retrain_on_batch_job, retrain_job, score_feed_job, ablations_job, report_job],
    sensors=[new_label_batches],
    schedules=[nightly_retrain],
    resources={"settings": PipelineSettings.from_env()},
)
