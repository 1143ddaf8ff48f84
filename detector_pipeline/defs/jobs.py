"""The jobs: validate a label batch, retrain on a label batch, retrain from the labels already in, score
the feed."""

import dagster as dg

from detector_pipeline.defs.assets import (
    BATCH_ASSETS,
    TRAINING_ASSETS,
    VERDICT_ASSETS,
    ablation_study,
    evaluation_report,
    feed_scores,
    teacher_labels,
)

# deploy/dagster.yaml and deploy/dagster.local.yaml limit runs with this tag to one at a time: two
# retrains never train at once.
RETRAIN_TAGS = {"detector_pipeline/retrain": "true"}
VALIDATE_TAGS = {"detector_pipeline/validate": "true"}

validate_batch_job = dg.define_asset_job(
    "validate_batch", selection=dg.AssetSelection.assets(*BATCH_ASSETS), tags=VALIDATE_TAGS,
    description="Validate one label batch (a partition): quarantine bad rows, assign splits; then score it with "
                "the promoted model before any retrain trains on it (batch_evaluation) and list the images where "
                "detector and teacher disagree most (review_queue). The sensor runs one per new batch, then one "
                "retrain for all batches validated meanwhile.",
    executor_def=dg.in_process_executor,  # cheap steps: a process each would cost more than the work
)

validate_verdicts_job = dg.define_asset_job(
    "validate_verdicts", selection=dg.AssetSelection.assets(*VERDICT_ASSETS), tags=VALIDATE_TAGS,
    description="Validate one verdict file under data/verdicts/ (a partition of reviewed_labels): quarantine bad "
                "rows with a reason. The next retrain's training_labels takes people's verdicts over the teacher's "
                "scores, and its regression gate checks the candidate on them.",
    executor_def=dg.in_process_executor,
)

retrain_on_batch_job = dg.define_asset_job(
    "retrain_on_batch", selection=dg.AssetSelection.assets(*TRAINING_ASSETS),
    description="Validate one label batch (a partition), then retrain everything that depends on the labels.",
    tags=RETRAIN_TAGS,
)

retrain_job = dg.define_asset_job(
    "retrain", selection=dg.AssetSelection.assets(*TRAINING_ASSETS) - dg.AssetSelection.assets(teacher_labels),
    description="Retrain from the label batches already validated: the nightly schedule runs this.",
    tags=RETRAIN_TAGS,
)

score_feed_job = dg.define_asset_job("score_feed", selection=dg.AssetSelection.assets(feed_scores))

ablations_job = dg.define_asset_job(
    "ablations", selection=dg.AssetSelection.assets(ablation_study),
    description="The article's three claims and the training changes against the recipe as written, each over "
                "five seeds (twenty trainings).",
)

report_job = dg.define_asset_job(
    "report", selection=dg.AssetSelection.assets(evaluation_report),
    description="The evaluation report again, from the models already trained (after an ablation study, say).",
)
