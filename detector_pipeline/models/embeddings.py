"""Frozen-backbone embeddings, cached by image content hash and backbone (registry/hash_cache.py), so
only new images are embedded."""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import timm
import torch

from detector_pipeline.config.device import autocast_dtype, to_device
from detector_pipeline.data.datasets import ImageFiles, make_loader
from detector_pipeline.data.transforms import BatchNormalize
from detector_pipeline.models.backbones import BackboneSpec, data_config
from detector_pipeline.models.calibration import (
    calibration_id,
    create_inference_backbone,
    ensure_calibration,
)
from detector_pipeline.registry.artifacts import atomic_path, file_lock
from detector_pipeline.registry.hash_cache import HashCache


@dataclass
class EmbeddingSet:
    """The embeddings of a set of images, one row per content hash, and what made them."""

    backbone: dict  # BackboneSpec.record()
    description: str
    randomly_initialised: bool
    table: pd.DataFrame  # sha256, embedding (np.float32 array)
    computed: int
    reused: int
    labels_version: str | None = None  # of the training_labels they were gathered for
    calibration: str | None = None  # the int8 engine's calibration (models/calibration.py); None: eager

    @property
    def dim(self) -> int:
        return len(self.table["embedding"].iloc[0]) if len(self.table) else 0


def frozen_features(model: torch.nn.Module, x: torch.Tensor, blocks: tuple[int, ...] = ()) -> torch.Tensor:
    """The pooled embedding, or (`blocks`) the class token after each of those transformer blocks,
    concatenated (timm's forward_intermediates; the mean token where a model has no class token)."""
    if not blocks:
        return model(x)
    out = model.forward_intermediates(x, indices=list(blocks), output_fmt="NLC", intermediates_only=True,
                                      return_prefix_tokens=True, stop_early=True, output_dict=True)
    prefix = out.get("image_intermediates_prefix")
    tokens = [p[:, 0] for p in prefix] if prefix is not None else [y.mean(1) for y in out["image_intermediates"]]
    return torch.cat(tokens, dim=1)


@torch.inference_mode()
def embed_files(model: torch.nn.Module, paths: Sequence[Path], batch_size: int, device: torch.device,
                num_workers: int = 0, amp: str = "auto", log=None, blocks: tuple[int, ...] = ()) -> np.ndarray:
    cfg = data_config(model)
    # use_prefetcher: timm's transform stops at uint8; BatchNormalize finishes the batch on the device.
    transform = timm.data.create_transform(**cfg, is_training=False, use_prefetcher=True)
    loader = make_loader(ImageFiles(paths, None, transform), batch_size, num_workers, device)
    normalize = BatchNormalize(cfg["mean"], cfg["std"], device)
    dtype = autocast_dtype(device, amp)
    model = to_device(model, device).eval()
    chunks, done, started = [], 0, time.time()
    for i, x in enumerate(loader):
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            # A copy: a ViT's pooled output is a view of the whole token tensor, and keeping the view
            # would keep every token of every image alive.
            chunks.append(frozen_features(model, normalize(x), blocks).float().cpu().numpy().copy())
        done += len(x)
        if log and (i % 10 == 9 or done == len(paths)):
            log(f"embedded {done}/{len(paths)} images, {done / (time.time() - started):.1f} img/s")
    return np.concatenate(chunks) if chunks else np.zeros((0, model.num_features * max(1, len(blocks))), np.float32)


def read_cache(path: Path) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame({"sha256": pd.Series(dtype=str), "embedding": pd.Series(dtype=object)})
    table = pq.read_table(path)
    return pd.DataFrame({"sha256": table["sha256"].to_pylist(),
                         "embedding": list(_to_matrix(table["embedding"]))})


def write_embeddings(path: Path, sha256: Sequence[str], matrix: np.ndarray) -> None:
    dim = matrix.shape[1] if matrix.ndim == 2 else 0
    values = pa.array(np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1))
    column = pa.FixedSizeListArray.from_arrays(values, dim)
    with atomic_path(path) as tmp:
        pq.write_table(pa.table({"sha256": pa.array(list(sha256), pa.string()), "embedding": column}), tmp)


def cache_of(spec: BackboneSpec, cache_dir: Path) -> HashCache:
    """One cache per backbone, engine and (int8) calibration; a cache of the older one-file layout
    becomes its first shard."""
    calibration = calibration_id(spec, cache_dir)
    cache = HashCache(cache_dir / (spec.key() if calibration is None else f"{spec.key()}__{calibration}"), np.float32)
    cache.adopt(cache.folder.with_suffix(".parquet"), "embedding")
    return cache


def prepare_engine(spec: BackboneSpec, images: pd.DataFrame, cache_dir: Path, log=None) -> str | None:
    """Calibrates the int8 engine if it has no calibration yet (once; concurrent runs wait for the
    first); returns the calibration's id, None for the eager engine."""
    if spec.engine == "eager":
        return None
    with file_lock(cache_dir / f"{spec.key()}.calibration"):
        return ensure_calibration(spec, images, cache_dir, log)


def uncached(spec: BackboneSpec, images: pd.DataFrame, cache_dir: Path) -> pd.DataFrame:
    """The rows of `images` (file, sha256) whose content is not in the cache yet, one per hash,
    in hash order (so chunks of it are the same whatever order the labels came in)."""
    unique = images.drop_duplicates("sha256")
    todo = set(cache_of(spec, cache_dir).missing(list(unique["sha256"])))
    return unique[unique["sha256"].isin(todo)].sort_values("sha256")


def embed_images(spec: BackboneSpec, todo: pd.DataFrame, cache_dir: Path, batch_size: int, device: torch.device,
                 num_workers: int = 0, amp: str = "auto", log=None) -> np.ndarray:
    """The embeddings of `todo`'s files by the backbone as its engine runs it (prepare_engine first)."""
    if not len(todo):
        return np.zeros((0, 0), np.float32)
    model = create_inference_backbone(spec, cache_dir)
    return embed_files(model, [Path(p) for p in todo["file"]], batch_size, device, num_workers, amp, log,
                       spec.feature_blocks)


def add_to_cache(spec: BackboneSpec, cache_dir: Path, sha256: Sequence[str], matrix: np.ndarray) -> None:
    """A new shard of the backbone's cache: two runs that add at once write two shards."""
    cache_of(spec, cache_dir).add(list(sha256), matrix)


def from_cache(spec: BackboneSpec, images: pd.DataFrame, cache_dir: Path, computed: int, embed: Callable,
               labels_version: str | None = None) -> EmbeddingSet:
    """The embeddings of every image, from the cache; `embed(rows)` computes those a damaged shard lost."""
    unique = images.drop_duplicates("sha256")
    file_of = dict(zip(unique["sha256"], unique["file"]))
    matrix, again = cache_of(spec, cache_dir).values(
        list(unique["sha256"]), lambda todo: embed(pd.DataFrame({"file": [file_of[h] for h in todo], "sha256": todo})))
    table = pd.DataFrame({"sha256": list(unique["sha256"]), "embedding": list(matrix)})
    return EmbeddingSet(spec.record(), spec.describe(), spec.is_random, table, computed=computed + again,
                        reused=len(unique) - computed - again, labels_version=labels_version,
                        calibration=calibration_id(spec, cache_dir))


def embed_with_cache(spec: BackboneSpec, images: pd.DataFrame, cache_dir: Path, batch_size: int,
                     device: torch.device, num_workers: int = 0, amp: str = "auto", log=None) -> EmbeddingSet:
    """images: columns file and sha256. Embeds only hashes not in the cache, in this process."""
    prepare_engine(spec, images, cache_dir, log)
    return from_cache(spec, images, cache_dir, 0, embedder(spec, cache_dir, batch_size, device, num_workers, amp, log))


def embedder(spec: BackboneSpec, cache_dir: Path, batch_size: int, device: torch.device, num_workers: int = 0,
             amp: str = "auto", log=None) -> Callable[[pd.DataFrame], np.ndarray]:
    """rows (file, sha256) -> their embeddings, by the backbone as its engine runs it."""
    return lambda rows: embed_images(spec, rows, cache_dir, batch_size, device, num_workers, amp, log)


def _to_matrix(column: pa.ChunkedArray) -> np.ndarray:
    combined = column.combine_chunks()
    dim = combined.type.list_size
    return combined.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)


def embedding_matrix(embeddings: pd.DataFrame, sha256: Sequence[str]) -> np.ndarray:
    indexed = embeddings.set_index("sha256")["embedding"]
    return np.stack(indexed.loc[list(sha256)].to_numpy()).astype(np.float32)
