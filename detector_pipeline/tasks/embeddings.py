"""embeddings: only the images not in the cache are embedded, in chunks, added to the cache by one step."""

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from detector_pipeline.config.device import pick_device
from detector_pipeline.config.profiles import Profile
from detector_pipeline.models import embeddings
from detector_pipeline.models.embeddings import EmbeddingSet
from detector_pipeline.registry.durable import require_free_space
from detector_pipeline.tasks.labels import labels_version

BYTES_PER_EMBEDDING = 8 * 1024  # up to 2,048 float32 values and the hash: the largest backbones, generously


def plan_embedding_chunks(labels: pd.DataFrame, cache_dir: Path, profile: Profile, chunks: int) -> list[pd.DataFrame]:
    """The images not embedded yet, in `chunks` parts of about equal size (at least one, maybe empty).
    Calibrates the int8 engine first if it needs it (one step, before the chunks' steps start)."""
    embeddings.prepare_engine(profile.embedding, labels[["file", "sha256"]], cache_dir)
    todo = embeddings.uncached(profile.embedding, labels[["file", "sha256"]], cache_dir)
    require_free_space(cache_dir, len(todo) * BYTES_PER_EMBEDDING + 16 * 2**20, f"embedding {len(todo)} images")
    parts = max(1, min(chunks, len(todo)))
    return [todo.iloc[i::parts] for i in range(parts)]


def embed_chunk(chunk: pd.DataFrame, out: Path, cache_dir: Path, profile: Profile, batch_size: int | None = None,
                threads: int | None = None, log=None) -> Path | None:
    """Embeds one chunk into its own parquet file (merged into the cache later, by one step)."""
    if not len(chunk):
        return None
    if threads:
        torch.set_num_threads(threads)
    matrix = embeddings.embed_images(profile.embedding, chunk, cache_dir, batch_size or profile.embed_batch_size,
                                     pick_device(profile.device), profile.num_workers, profile.amp, log)
    embeddings.write_embeddings(out, list(chunk["sha256"]), matrix)
    return out


def merge_embedding_chunks(labels: pd.DataFrame, cache_dir: Path, profile: Profile,
                           chunk_files: list[Path | None]) -> EmbeddingSet:
    """The chunks into the cache as one shard, then the embeddings of every labelled image (those of a
    cache shard found damaged meanwhile embedded again, here)."""
    spec, files = profile.embedding, sorted(p for p in chunk_files if p is not None)
    new = pd.concat([embeddings.read_cache(p) for p in files], ignore_index=True) if files else None
    if new is not None and len(new):
        embeddings.add_to_cache(spec, cache_dir, new["sha256"], np.stack(new["embedding"].to_numpy()))
    embed = embeddings.embedder(spec, cache_dir, profile.embed_batch_size, pick_device(profile.device),
                                profile.num_workers, profile.amp)
    result = embeddings.from_cache(spec, labels[["file", "sha256"]], cache_dir, 0 if new is None else len(new), embed,
                                   labels_version(labels))
    for path in files:
        path.unlink(missing_ok=True)
    return result
