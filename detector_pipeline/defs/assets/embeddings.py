"""embeddings: a graph of steps, embedding_chunks -> embed_chunk per chunk -> merge_embedding_chunks."""

from pathlib import Path

import dagster as dg
import pandas as pd

from detector_pipeline.defs.configs import EmbedChunkConfig, EmbeddingChunksConfig
from detector_pipeline.defs.partitions import GPU_POOL, GPU_STEP_TAGS, GROUP
from detector_pipeline.defs.resources import PipelineSettings
from detector_pipeline.tasks import embeddings as tasks


@dg.op(out=dg.DynamicOut(pd.DataFrame))
def embedding_chunks(config: EmbeddingChunksConfig, settings: PipelineSettings, training_labels: pd.DataFrame):
    """The images not in the embedding cache yet, split into `chunks` parts: one step each."""
    parts = tasks.plan_embedding_chunks(training_labels, settings.data / "cache/embeddings",
                                        settings.resolved_profile(), config.chunks)
    for i, part in enumerate(parts):
        yield dg.DynamicOutput(part, mapping_key=f"chunk_{i}")


@dg.op(pool=GPU_POOL, tags=GPU_STEP_TAGS)
def embed_chunk(context: dg.OpExecutionContext, config: EmbedChunkConfig, settings: PipelineSettings,
                chunk: pd.DataFrame) -> str | None:
    cache_dir = settings.data / "cache/embeddings"
    out = cache_dir / "chunks" / context.run.run_id / f"{context.get_mapping_key()}.parquet"
    path = tasks.embed_chunk(chunk, out, cache_dir, settings.resolved_profile(), config.batch_size, config.threads,
                             log=context.log.info)
    return None if path is None else str(path)


@dg.op
def merge_embedding_chunks(settings: PipelineSettings, training_labels: pd.DataFrame, chunk_files: list) -> dg.Output:
    result = tasks.merge_embedding_chunks(training_labels, settings.data / "cache/embeddings",
                                          settings.resolved_profile(), [Path(f) for f in chunk_files if f])
    return dg.Output(result, metadata={
        "backbone": result.description,
        "engine": result.backbone.get("engine", "eager"),
        "int8_calibration": result.calibration,
        "randomly_initialised": result.randomly_initialised,
        "computed": result.computed,
        "reused": result.reused,
        "chunks": len(chunk_files),
        "dim": result.dim,
        "dagster/row_count": len(result.table),
    })


@dg.graph_asset(group_name=GROUP, kinds={"pytorch", "parquet"}, code_version="5")
def embeddings(training_labels):
    """Frozen-backbone embeddings per image, cached by content hash and backbone: only new images
    are embedded, in parallel chunks (steps of the multiprocess executor here, pods under
    k8s_job_executor), merged into the cache by one step."""
    files = embedding_chunks(training_labels).map(embed_chunk).collect()
    return merge_embedding_chunks(training_labels, files)
