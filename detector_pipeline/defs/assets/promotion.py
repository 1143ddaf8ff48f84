"""The promotion gate (two blocking checks on detector) and promoted_detector, the pointer it moves."""

import dagster as dg
import pandas as pd

from detector_pipeline.defs import metadata as md
from detector_pipeline.defs.assets.models import detector
from detector_pipeline.defs.partitions import GROUP
from detector_pipeline.defs.resources import PipelineSettings
from detector_pipeline.errors import MismatchedInputs
from detector_pipeline.models.embeddings import EmbeddingSet
from detector_pipeline.registry import pointer
from detector_pipeline.registry.consistency import require_same_labels
from detector_pipeline.registry.records import ModelRecord
from detector_pipeline.tasks import promotion
from detector_pipeline.tasks.labels import labels_version


def _check_result(comparison: dict) -> dg.AssetCheckResult:
    """The comparison as people read it: each ROC-AUC to three digits, the difference's interval as
    text beside it, and where a figure is missing, why."""
    why_missing = comparison.get("why", "")
    metadata = {k: v for k, v in comparison.items() if v is not None and k != "passed"}
    for key in ("candidate_val_roc_auc", "incumbent_val_roc_auc", "difference"):
        if key in comparison:
            metadata[key] = md.number(comparison[key], why_missing)
    if "difference_95ci" in comparison:
        metadata["difference_95ci"] = md.interval(comparison["difference_95ci"], why_missing)
    return dg.AssetCheckResult(passed=comparison["passed"], metadata=metadata)


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


@dg.asset(group_name=GROUP, kinds={"json"}, code_version="2")
def promoted_detector(context: dg.AssetExecutionContext, settings: PipelineSettings, detector: ModelRecord,
                      evaluation_report: dict) -> dg.Output:
    """The model the feed is scored with. Runs only when the detector's blocking gate checks passed."""
    if evaluation_report["detector"]["version"] != detector.version:
        raise MismatchedInputs(f"evaluation_report describes detector {evaluation_report['detector']['version']}, "
                               f"not {detector.version}: materialize evaluation_report again (job `report`)")
    record = pointer.promote(settings.data, {
        "version": detector.version, "folder": detector.folder,
        "threshold": evaluation_report["operating_point"]["threshold"],
        "operating_point": evaluation_report["operating_point"],
        "report": evaluation_report["report_id"], "run_id": context.run.run_id,
    })
    return dg.Output(record, metadata={"version": record["version"], "threshold": record["threshold"],
                                       "previous_version": record["previous_version"] or "none"})
