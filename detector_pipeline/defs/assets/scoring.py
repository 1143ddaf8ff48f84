"""feed_scores: the feed folder scored with the promoted detector, and its drift check against the
scores of the model's test split."""

from pathlib import Path

import dagster as dg

from detector_pipeline.defs.configs import FeedConfig
from detector_pipeline.defs.partitions import GPU_POOL, GPU_STEP_TAGS
from detector_pipeline.defs.resources import PipelineSettings
from detector_pipeline.evaluation import plots
from detector_pipeline.errors import ArtifactError
from detector_pipeline.registry.pointer import model_folder, registry_dir
from detector_pipeline.registry.records import PromotedModel
from detector_pipeline.tasks.production import feed_drift
from detector_pipeline.tasks.review import feed_scores_file
from detector_pipeline.tasks.scoring import review_band, score_to_parquet

DRIFT_CHECK = "feed_matches_test_distribution"


@dg.asset(group_name="scoring", kinds={"pytorch", "parquet"}, code_version="2", pool=GPU_POOL, op_tags=GPU_STEP_TAGS,
          check_specs=[dg.AssetCheckSpec(DRIFT_CHECK, asset="feed_scores",
                                         description="WARN when the feed's P(AI) distribution (PSI, KS) or share of "
                                                     "`ai` decisions moved against the promoted model's test split")])
def feed_scores(context: dg.AssetExecutionContext, config: FeedConfig, settings: PipelineSettings,
                promoted_detector: PromotedModel | None):
    """P(AI) and a decision (`ai`, `review` within the report's review band below the threshold, `real`)
    for every image in the feed folder, with the promoted model."""
    if promoted_detector is None:
        raise ArtifactError(f"no promoted detector in {registry_dir(settings.data)}: train one (job `retrain`) or "
                            "promote a version (detector-pipeline promote VERSION)")
    feed = Path(config.feed_dir or settings.feed_dir)
    out = feed_scores_file(settings.data, promoted_detector.version)
    band = review_band(promoted_detector)
    summary = score_to_parquet(model_folder(settings.data, promoted_detector.folder), promoted_detector.threshold,
                               [feed], out, batch_size=settings.resolved_profile().infer_batch_size,
                               device=settings.device, log=context.log.info, review_band=band)
    yield dg.Output(summary, metadata={**{k: v for k, v in summary.items() if k != "output"},
                                       "output": dg.MetadataValue.path(summary["output"])})
    yield _drift_check(feed_drift(out, promoted_detector, settings.data, band), promoted_detector.threshold)


def _drift_check(verdict: dict, threshold: float) -> dg.AssetCheckResult:
    metadata = {"why": verdict["why"]}
    if "psi" in verdict:
        metadata.update({
            "psi": verdict["psi"], "psi_band": verdict["psi_band"], "ks_statistic": verdict["ks_statistic"],
            "ks_p_value": verdict["ks_p_value"], "feed_images": verdict["n_feed"],
            "test_images": verdict["n_reference"],
            "shares": dg.MetadataValue.json(verdict["shares"]), "thresholds": dg.MetadataValue.json(verdict["thresholds"]),
            "histogram": dg.MetadataValue.md(plots.markdown_image(
                plots.drift_histogram(verdict["reference"], verdict["feed"], threshold), "feed against test scores"))})
    return dg.AssetCheckResult(check_name=DRIFT_CHECK, passed=not verdict["drifted"],
                               severity=dg.AssetCheckSeverity.WARN, metadata=metadata)
