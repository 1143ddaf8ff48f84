"""The software-defined assets, one module per stage; wiring only: the work is in `detector_pipeline.tasks`."""

from detector_pipeline.defs.assets.embeddings import embeddings
from detector_pipeline.defs.assets.evaluation import ablation_study, evaluation_report, offtheshelf_baseline
from detector_pipeline.defs.assets.labels import label_stats, no_source_in_two_splits, teacher_labels, training_labels
from detector_pipeline.defs.assets.models import detector, probe_model
from detector_pipeline.defs.assets.promotion import (
                                                     detector_beats_probe_on_validation,
                                                     detector_not_worse_than_promoted,
                                                     promoted_detector,
)
from detector_pipeline.defs.assets.production import batch_evaluation, promoted_detector_onnx, review_queue
from detector_pipeline.defs.assets.review import detector_keeps_human_verdicts, reviewed_labels, shadow_comparison
from detector_pipeline.defs.assets.scoring import feed_scores

TRAINING_ASSETS = [teacher_labels, training_labels, label_stats, embeddings, probe_model, detector, offtheshelf_baseline,
                   evaluation_report, shadow_comparison, promoted_detector, promoted_detector_onnx]
BATCH_ASSETS = [teacher_labels, batch_evaluation, review_queue]  # a new batch's validation, before any retrain
VERDICT_ASSETS = [reviewed_labels]  # a verdict file's validation; the next retrain uses it
ASSETS = [*TRAINING_ASSETS, batch_evaluation, review_queue, reviewed_labels, feed_scores, ablation_study]
CHECKS = [no_source_in_two_splits, detector_beats_probe_on_validation, detector_not_worse_than_promoted,
          detector_keeps_human_verdicts]
