"""The promotion gate (two blocking checks on detector) and promoted_detector, the pointer it moves."""

import dagster as dg
import pandas as pd

from detector_pipeline.defs import metadata as md
from detector_pipeline.defs.assets.models import detector
from detector_pipeline.defs.partitions import GROUP
from detector_pipeline.defs.resources import PipelineSettings
from detector_pipeline.errors import MismatchedInputs
from detector_pipeline.models.embeddings import EmbeddingSet
from detector_pipeline.registry.consistency import require_same_labels
from detector_pipeline.registry.records import EvaluationReport, ModelRecord, PromotedModel
from detector_pipeline.review.shadow import ShadowComparison
from detector_pipeline.tasks import promotion
from detector_pipeline.tasks.labels import labels_version


def _check_result(decision: promotion.GateDecision) -> dg.AssetCheckResult:
    """The decision as people read it: each ROC-AUC to three digits, the difference's interval as text
    beside it, and where a figure is missing, why."""
    metadata = {"why": decision.why, "compared_with": decision.compared_with or "nothing",
                "promoted_model_usable": decision.promoted_model_usable}
    if decision.difference is not None:
        metadata.update({key: md.number(getattr(decision, key), decision.why)
                         for key in ("candidate_val_roc_auc", "incumbent_val_roc_auc", "difference")})
        metadata["difference_95ci"] = md.interval(decision.difference_95ci, decision.why)
    return dg.AssetCheckResult(passed=decision.passed, metadata=metadata)


@dg.asset_check(asset=detector, blocking=True,
                additional_ins={"probe_model": dg.AssetIn(), "embeddings": dg.AssetIn(), "training_labels": dg.AssetIn()})
def detector_beats_probe_on_validation(detector: ModelRecord, probe_model: ModelRecord, embeddings: EmbeddingSet,
                                       training_labels: pd.DataFrame, settings: PipelineSettings) -> dg.AssetCheckResult:
    """Fine-tuning is only worth shipping if it does at least as well as the free baseline: the check fails
    when the probe ranks the validation split better beyond that split's noise."""
    require_same_labels(labels_version(training_labels), detector=detector.labels_version,
                        probe_model=probe_model.labels_version, embeddings=embeddings.labels_version)
    return _check_result(promotion.compare_with_probe(training_labels, detector, probe_model, embeddings,
                                                      settings.resolved_profile(), settings.data))


@dg.asset_check(asset=detector, blocking=True, additional_ins={"training_labels": dg.AssetIn()})
def detector_not_worse_than_promoted(detector: ModelRecord, training_labels: pd.DataFrame,
                                     settings: PipelineSettings) -> dg.AssetCheckResult:
    """The candidate may only replace the promoted model if it is not worse on today's validation split
    beyond the noise of that split. A promoted model that can't be loaded is treated as none (it can't
    score the feed, so keeping it protects nothing; the candidate still has to pass the probe gate);
    the metadata's "why" says so."""
    require_same_labels(labels_version(training_labels), detector=detector.labels_version)
    return _check_result(promotion.compare_with_promoted(training_labels, detector, settings.resolved_profile(),
                                                         settings.data))


@dg.asset(group_name=GROUP, kinds={"json"}, code_version="4", io_manager_key="promotion_pointer")
def promoted_detector(context: dg.AssetExecutionContext, detector: ModelRecord, evaluation_report: EvaluationReport,
                      shadow_comparison: ShadowComparison) -> dg.Output:
    """The model the feed is scored with, and the threshold its evaluation report chose on validation.
    Runs only when the detector's blocking gate checks passed, after it was shadow-scored on the
    champion's feed (what it changes is in the metadata); stored by moving the promotion pointer."""
    if evaluation_report.detector_version != detector.version:
        raise MismatchedInputs(f"evaluation_report describes detector {evaluation_report.detector_version}, "
                               f"not {detector.version}: materialize evaluation_report again (job `report`)")
    promoted = PromotedModel(version=detector.version, folder=detector.folder, threshold=evaluation_report.threshold,
                             operating_point=evaluation_report.operating_point,
                             report_id=evaluation_report.report_id, run_id=context.run.run_id,
                             promoted_by="promoted_detector")
    return dg.Output(promoted, metadata={"version": promoted.version, "threshold": md.number(promoted.threshold, ""),
                                         "report": promoted.report_id, "shadow": shadow_comparison.line()})
