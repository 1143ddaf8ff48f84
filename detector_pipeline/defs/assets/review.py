"""People in the loop: reviewed_labels (one partition per verdict file), the regression gate on the
images people judged (blocking, on detector), and shadow_comparison (the challenger on the champion's
feed, before promotion)."""

import dagster as dg
import pandas as pd

from detector_pipeline.defs import metadata as md
from detector_pipeline.defs.assets.models import detector
from detector_pipeline.defs.partitions import GPU_POOL, GPU_STEP_TAGS, GROUP, REVIEW_GROUP, verdict_files
from detector_pipeline.defs.resources import PipelineSettings
from detector_pipeline.evaluation import plots
from detector_pipeline.evaluation.disagreements import contact_sheet
from detector_pipeline.registry.records import EvaluationReport, ModelRecord
from detector_pipeline.review import verdicts
from detector_pipeline.review.regression import RegressionDecision
from detector_pipeline.review.shadow import ShadowComparison
from detector_pipeline.data.batches import combine_batches
from detector_pipeline.tasks import review

SHADOW_CHECK = "shadow_flips_within_validation_prediction"


@dg.asset(partitions_def=verdict_files, group_name=REVIEW_GROUP, kinds={"pandas", "parquet"}, code_version="1",
          io_manager_key="validated_verdicts", ins={"teacher_labels": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())})
def reviewed_labels(context: dg.AssetExecutionContext, settings: PipelineSettings, teacher_labels) -> dg.Output:
    """One verdict file under data/verdicts/, validated: each verdict names a known image (of a label
    batch or a scored feed), bad rows are quarantined with a reason; who decided what, and when."""
    name = context.partition_key
    known = review.known_images(combine_batches(teacher_labels), settings.data)
    validated = review.validate_verdict_file(settings.data / verdicts.VERDICTS_DIR / name, known, settings.data)
    table, quarantined = validated.accepted, validated.quarantined
    version = verdicts.verdicts_version(table)
    quarantine_file = verdicts.write_quarantine(settings.data, name, version, quarantined)
    return dg.Output(table, data_version=dg.DataVersion(version), metadata={
        "dagster/row_count": len(table), "input_rows": validated.n_input, "accepted": len(table),
        "quarantined": len(quarantined),
        "quarantine_reasons": dg.MetadataValue.json(quarantined["reason"].value_counts().to_dict()),
        "quarantine": md.table(quarantined, limit=50), "quarantine_file": dg.MetadataValue.path(str(quarantine_file)),
        "verdicts": dg.MetadataValue.json(table["verdict"].value_counts().to_dict()),
        "reviewers": dg.MetadataValue.json(table["reviewer"].value_counts().to_dict()),
        "rows": md.table(table[["verdict", "reviewer", "decided_at", "note", "file"]].astype(str), limit=50),
        "verdicts_version": version})


def _sheet(rows: list[tuple[str, float, float, str]], settings: PipelineSettings, alt: str) -> dg.MetadataValue:
    """A contact sheet of (kind, T, D, file) rows, T and D the two models' P(AI)s."""
    queue = pd.DataFrame([{"rank": i + 1, "kind": kind, "ai_score": t, "p_ai": d, "p_ai_on_teacher_scale": d}
                          for i, (kind, t, d, _) in enumerate(rows)])
    png = contact_sheet(queue, [settings.data / f for *_, f in rows])
    return dg.MetadataValue.md(plots.markdown_image(png, alt))


@dg.asset_check(asset=detector, blocking=True, additional_ins={
    "training_labels": dg.AssetIn(),
    "reviewed_labels": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())})
def detector_keeps_human_verdicts(detector: ModelRecord, training_labels: pd.DataFrame, reviewed_labels,
                                  settings: PipelineSettings) -> dg.AssetCheckResult:
    """On the images people judged `ai` or `real`, the candidate may not decide worse than the promoted
    model beyond noise (each at its own threshold); names the images it newly gets wrong, with their
    thumbnails."""
    decision = review.regression_on_verdicts(training_labels, verdicts.latest_verdicts(reviewed_labels), detector,
                                             settings.resolved_profile(), settings.data, settings.target_precision)
    return dg.AssetCheckResult(passed=decision.passed, metadata=_regression_metadata(decision, settings))


def _regression_metadata(decision: RegressionDecision, settings: PipelineSettings) -> dict:
    metadata = {"why": decision.why, "judged_images": decision.judged_images,
                "compared_with": decision.compared_with or "nothing"}
    if decision.judged_images:
        metadata.update({
            "candidate_decided_as_people": md.number(decision.candidate_right, decision.why),
            "incumbent_decided_as_people": md.number(decision.incumbent_right, decision.why),
            "difference": md.number(decision.difference, decision.why),
            "difference_95ci": md.interval(decision.difference_95ci, decision.why),
            "candidate_wrong": decision.candidate_wrong,
            "incumbent_wrong": decision.incumbent_wrong if decision.incumbent_wrong is not None else "n/a",
            "candidate_roc_auc": md.number(decision.candidate_roc_auc, "one class only among the judged images"),
            "incumbent_roc_auc": md.number(decision.incumbent_roc_auc, "one class only among the judged images"
                                           if decision.compared_with else decision.why),
            "newly_wrong": md.table(decision.newly_wrong),
            "newly_wrong_images": _sheet([(f"person: {r['verdict']}", r["p_incumbent"], r["p_candidate"], r["file"])
                                          for r in decision.newly_wrong], settings,
                                         "images the candidate newly gets wrong (T: promoted model, D: candidate)")
            if decision.newly_wrong else dg.MetadataValue.md("_none_")})
    return metadata


@dg.asset(group_name=GROUP, kinds={"pytorch"}, code_version="1", pool=GPU_POOL, op_tags=GPU_STEP_TAGS,
          check_specs=[dg.AssetCheckSpec(SHADOW_CHECK, asset="shadow_comparison",
                                         description="WARN when far more feed decisions change than the two "
                                                     "models' validation flips predict")])
def shadow_comparison(settings: PipelineSettings, detector: ModelRecord, evaluation_report: EvaluationReport,
                      training_labels: pd.DataFrame):
    """The candidate (challenger) scores the images the promoted model (champion) scored in its latest
    feed_scores, before it can replace it: how many decisions change, which way, the agreement, and
    the biggest flips. The champion comes from the pointer, not as an input: promoted_detector, which
    this precedes, is the champion's asset (an input would make a cycle)."""
    comparison = review.shadow_compare(training_labels, detector, evaluation_report.threshold,
                                       settings.resolved_profile(), settings.data)
    yield dg.Output(comparison, metadata=_shadow_metadata(comparison, settings))
    yield dg.AssetCheckResult(check_name=SHADOW_CHECK, passed=not comparison.surprising,
                              severity=dg.AssetCheckSeverity.WARN, metadata={
                                  "why": comparison.why, "line": comparison.line(),
                                  "validation_flip_share": md.number(comparison.validation_flip_share, comparison.why),
                                  "validation_flip_share_95ci": md.interval(comparison.validation_flip_share_ci95,
                                                                            comparison.why)})


def _shadow_metadata(comparison: ShadowComparison, settings: PipelineSettings) -> dict:
    metadata = {"line": comparison.line(), "why": comparison.why, "challenger": comparison.challenger,
                "champion": comparison.champion or "none"}
    if not comparison.compared:
        return metadata
    flips = comparison.biggest_flips
    metadata.update({"feed_images": comparison.feed_images, "changed": comparison.changed,
                     "real_to_ai": comparison.real_to_ai, "ai_to_real": comparison.ai_to_real,
                     "agreement": md.number(comparison.agreement, "no feed images"),
                     "cohen_kappa": md.number(comparison.cohen_kappa, "one decision only on both sides"),
                     "spearman": md.number(comparison.spearman, "too few feed images"),
                     "validation_flip_share": md.number(comparison.validation_flip_share, "no validation split"),
                     "biggest_flips": md.table(flips)})
    if flips:
        metadata["contact_sheet"] = _sheet([(f["direction"], f["p_champion"], f["p_challenger"], f["path"]) for f in flips],
                                           settings, "biggest flips (T: champion's P(AI), D: challenger's)")
    return metadata

