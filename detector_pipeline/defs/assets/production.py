"""The promoted model in production: batch_evaluation and review_queue (one partition per label
batch, run by the batch's validation, so before the retrain that trains on the batch), and the ONNX
export of every promoted version."""

import dagster as dg
import pandas as pd
from pydantic import Field

from detector_pipeline.defs import metadata as md
from detector_pipeline.defs.partitions import GPU_POOL, GPU_STEP_TAGS, label_batches
from detector_pipeline.defs.resources import PipelineSettings
from detector_pipeline.errors import ArtifactError
from detector_pipeline.evaluation import plots
from detector_pipeline.registry import live_figures
from detector_pipeline.registry.records import PromotedModel
from detector_pipeline.tasks import production

GROUP = "production"
AGING_CHECK = "batch_within_test_noise"
QUEUE_COLUMNS = ["rank", "kind", "ai_score", "p_ai", "p_ai_on_teacher_scale", "disagreement", "family", "source_group", "file"]


class ReviewQueueConfig(dg.Config):
    k: int = Field(50, ge=1, description="images per batch, largest disagreement first")


def _aging_check(result: production.BatchEvaluation) -> dg.AssetCheckResult:
    """WARN, not blocking: an aging model is news for people, not a reason to stop the pipeline. A
    batch that can't be judged (no model, no figures, no noise estimate) passes and says why."""
    if not result.measured:
        return dg.AssetCheckResult(check_name=AGING_CHECK, passed=True, severity=dg.AssetCheckSeverity.WARN,
                                   metadata={"why": f"not judged: {result.why}", "batch": result.batch})
    aging = result.aging
    worse = [f"{s['slice']}: {s['roc_auc']:.3f} [{s['roc_auc_ci95'][0]:.3f}, {s['roc_auc_ci95'][1]:.3f}] against "
             f"{s['test_roc_auc']:.3f} ({s['compared_with']})" for s in aging["worse_slices"]]
    why = ("not judged: " + aging["not_judged_because"] if not aging["judged"] else
           "the batch's ROC-AUC is below the model's test ROC-AUC beyond noise" if aging["worse_beyond_noise"] else
           "the batch's ROC-AUC is within the noise of the model's test ROC-AUC")
    return dg.AssetCheckResult(check_name=AGING_CHECK, passed=not aging["worse_beyond_noise"],
                               severity=dg.AssetCheckSeverity.WARN, metadata={
                                   "why": why, "batch": result.batch, "model_version": result.model_version,
                                   **md.figure("batch_roc_auc", aging["batch_roc_auc"], aging["batch_roc_auc_ci95"],
                                               aging.get("not_judged_because", "")),
                                   **md.figure("test_roc_auc", aging["test_roc_auc"], aging["test_roc_auc_ci95"],
                                               "the model has no evaluation report"),
                                   "difference": md.number(aging["difference"], aging.get("not_judged_because", "")),
                                   "difference_95ci": md.interval(aging["difference_95ci"],
                                                                  aging.get("not_judged_because", "")),
                                   "worse_slices": dg.MetadataValue.md("\n".join(f"- {w}" for w in worse) or "_none_")})


@dg.asset(partitions_def=label_batches, group_name=GROUP, kinds={"pytorch", "parquet"}, code_version="2",
          pool=GPU_POOL, op_tags=GPU_STEP_TAGS,
          check_specs=[dg.AssetCheckSpec(AGING_CHECK, asset="batch_evaluation", partitions_def=label_batches,
                                         description="WARN when the batch's ROC-AUC is below the promoted model's "
                                                     "test ROC-AUC beyond noise; names the slices that got worse")])
def batch_evaluation(context: dg.AssetExecutionContext, settings: PipelineSettings, teacher_labels: pd.DataFrame,
                     promoted_detector: PromotedModel | None):
    """The model promoted when the batch arrived, scored on the batch before any retrain trains on it
    (the batch's validation runs this; the retrain waits for validations): ROC-AUC and PR-AUC against
    the teacher and the ground truth, with intervals, per family and source, and its decision rates;
    compared with the test figures of the evaluation report the promotion names."""
    result = production.evaluate_batch(context.partition_key, teacher_labels, promoted_detector, settings.data,
                                       settings.resolved_profile())
    yield dg.Output(result, metadata=_evaluation_metadata(result, live_figures.series(settings.data)))
    yield _aging_check(result)


def _evaluation_metadata(result: production.BatchEvaluation, series: list[dict]) -> dict:
    metadata = {"status": result.status, "model_version": result.model_version or "none"}
    if not result.measured:
        return {**metadata, "why": result.why}
    figures, aging = result.figures, result.aging
    slices = pd.DataFrame([{"slice": r["slice"], "n": r["n"], "positives": r["positives"], "roc_auc": r["roc_auc"],
                            "95 % interval": "[{:.3f}, {:.3f}]".format(*r["roc_auc_ci95"]) if r["roc_auc_ci95"] else ""}
                           for r in figures["families"] + figures["sources"]])
    return {**metadata,
            **md.figure("roc_auc", figures["teacher"]["roc_auc"]["value"], figures["teacher"]["roc_auc"]["ci95"],
                        "the batch holds one class only (teacher labels)"),
            "pr_auc": md.number(figures["teacher"]["pr_auc"]["value"], "the batch holds one class only"),
            "ground_truth_roc_auc": md.number((figures.get("ground_truth") or {}).get("roc_auc", {}).get("value"),
                                              "the batch has no ground-truth column (is_ai) or one class only"),
            "test_roc_auc": md.number(aging["test_roc_auc"], "the model has no evaluation report"),
            "worse_beyond_noise": (aging["worse_beyond_noise"] if aging["judged"]
                                   else f"not judged: {aging['not_judged_because']}"),
            "ai_share": md.number(figures["decisions"]["ai_share"], "no images"),
            "threshold": md.number(result.threshold, "no threshold"),
            "images": result.n, "already_trained_on": result.already_trained_on if result.already_trained_on is not None
            else "not recorded for this model",
            "slices": md.table(slices),
            "series": dg.MetadataValue.md(plots.markdown_image(plots.live_series(series), "ROC-AUC per batch")),
            "scores": dg.MetadataValue.path(result.scores_file)}


@dg.asset(partitions_def=label_batches, group_name=GROUP, kinds={"parquet"}, code_version="1")
def review_queue(context: dg.AssetExecutionContext, config: ReviewQueueConfig, settings: PipelineSettings,
                 batch_evaluation: production.BatchEvaluation) -> dg.Output:
    """The images where the promoted detector and the teacher disagree most, for a person to look at:
    teacher errors, or a generator the detector has not learnt. `detector-pipeline review BATCH`."""
    if not batch_evaluation.measured:
        return dg.Output({"batch": context.partition_key, "rows": 0, "why": batch_evaluation.why},
                         metadata={"rows": 0, "why": batch_evaluation.why})
    queue = production.review_queue(batch_evaluation, settings.data, config.k)
    shown = queue["queue"][[c for c in QUEUE_COLUMNS if c in queue["queue"].columns]].copy()
    shown["file"] = [f"[{f.rsplit('/', 1)[-1]}](file://{settings.data.resolve() / f})" for f in shown["file"]]
    return dg.Output({k: v for k, v in queue.items() if k not in ("queue", "sheet_png")}, metadata={
        "rows": queue["rows"], "model_version": queue["model_version"],
        "kinds": dg.MetadataValue.json(queue["queue"]["kind"].value_counts().to_dict()),
        "contact_sheet": dg.MetadataValue.md(plots.markdown_image(queue["sheet_png"], "review queue")),
        "queue": md.table(shown),
        "queue_file": dg.MetadataValue.path(queue["queue_file"])})


PARITY_CHECK = "onnx_matches_torch"


@dg.asset(group_name=GROUP, kinds={"onnx"}, code_version="1",
          check_specs=[dg.AssetCheckSpec(PARITY_CHECK, asset="promoted_detector_onnx",
                                         description="max |Δ P(AI)| between ONNX Runtime and PyTorch on the model's "
                                                     "test images is within 1e-4")])
def promoted_detector_onnx(context: dg.AssetExecutionContext, settings: PipelineSettings,
                           promoted_detector: PromotedModel):
    """The promoted version as ONNX with its preprocessing (JSON), for scoring outside Python and outside
    this repository; checked against the PyTorch model on the model's own test images. The promotion
    has happened by now: an export that can't be made fails its check (and says why), not the run."""
    try:
        exported = production.export_promoted(promoted_detector, settings.data)
    except ArtifactError as exc:
        why = f"not exported: {exc}"
        yield dg.Output({"version": promoted_detector.version, "exported": False, "why": why}, metadata={"why": why})
        yield dg.AssetCheckResult(check_name=PARITY_CHECK, passed=False, metadata={"why": why})
        return
    yield dg.Output({**exported, "exported": True}, metadata={
        "version": exported["version"], "onnx": dg.MetadataValue.path(exported["onnx"]),
        "preprocessing": dg.MetadataValue.path(exported["preprocessing"]),
        "max_abs_delta_p": exported["max_abs_delta_p"], "parity_images": exported["n_parity_images"]})
    why = (f"max |Δ P(AI)| {exported['max_abs_delta_p']:.2g} on {exported['n_parity_images']} test images, "
           f"{'within' if exported['passed'] else 'beyond'} the tolerance {exported['tolerance']:g}")
    yield dg.AssetCheckResult(check_name=PARITY_CHECK, passed=exported["passed"], metadata={
        "why": why, "max_abs_delta_p": exported["max_abs_delta_p"], "tolerance": exported["tolerance"],
        "parity_images": exported["n_parity_images"]})
