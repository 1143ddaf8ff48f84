"""feed_scores: the feed folder scored with the promoted detector."""

from pathlib import Path

import dagster as dg

from detector_pipeline.defs.configs import FeedConfig
from detector_pipeline.defs.partitions import GPU_POOL, GPU_STEP_TAGS
from detector_pipeline.defs.resources import PipelineSettings
from detector_pipeline.registry.pointer import model_folder
from detector_pipeline.tasks.scoring import score_to_parquet


@dg.asset(group_name="scoring", kinds={"pytorch", "parquet"}, code_version="1", pool=GPU_POOL, op_tags=GPU_STEP_TAGS)
def feed_scores(context: dg.AssetExecutionContext, config: FeedConfig, settings: PipelineSettings,
                promoted_detector: dict) -> dg.Output:
    """P(AI) and a decision for every image in the feed folder, with the promoted model."""
    feed = Path(config.feed_dir or settings.feed_dir)
    out = settings.data / "scores" / promoted_detector["version"] / "feed_scores.parquet"
    summary = score_to_parquet(model_folder(settings.data, promoted_detector["folder"]), promoted_detector["threshold"], [feed],
                               out, batch_size=settings.resolved_profile().infer_batch_size, device=settings.device,
                               log=context.log.info)
    return dg.Output(summary, metadata={**{k: v for k, v in summary.items() if k != "output"},
                                        "output": dg.MetadataValue.path(summary["output"])})
