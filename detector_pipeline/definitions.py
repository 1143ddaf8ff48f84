"""The Dagster code location: `dagster dev` / `dg dev` load `defs` from here."""

import dagster as dg

from detector_pipeline.assets import ASSETS, CHECKS
from detector_pipeline.resources import PipelineSettings

train_detector_job = dg.define_asset_job(
    "train_detector", selection=dg.AssetSelection.assets(*ASSETS),
    description="Teacher labels to evaluation report: the whole chain.",
)

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    jobs=[train_detector_job],
    resources={"settings": PipelineSettings.from_env()},
)
