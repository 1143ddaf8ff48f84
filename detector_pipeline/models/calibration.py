"""The int8 engine's calibration: made once per backbone from labelled images, kept beside the
embedding cache, and named in the cache's file name, so that embeddings from two calibrations never
share one cache."""

import hashlib
from pathlib import Path

import pandas as pd
import timm
import torch
from safetensors.torch import load_file, save_file

from detector_pipeline.data.images import open_rgb
from detector_pipeline.models import quantized
from detector_pipeline.models.backbones import (
    BackboneSpec,
    create_backbone,
    data_config,
)
from detector_pipeline.registry.artifacts import atomic_path

# 32 images measured as enough: per-image cosine to fp32 >= 0.99 on held-out demo images (README).
CALIBRATION_IMAGES = 32
_BATCH = 8


class CalibrationMissing(RuntimeError):
    """An int8 backbone was asked for before its calibration was made (ensure_calibration)."""


def calibration_file(spec: BackboneSpec, cache_dir: Path) -> Path:
    return cache_dir / f"{spec.key()}.calibration.safetensors"


def calibration_id(spec: BackboneSpec, cache_dir: Path) -> str | None:
    """A short content hash of the calibration file; None for the eager engine."""
    if spec.engine == "eager":
        return None
    return hashlib.sha256(_existing_calibration(spec, cache_dir).read_bytes()).hexdigest()[:12]


def _existing_calibration(spec: BackboneSpec, cache_dir: Path) -> Path:
    path = calibration_file(spec, cache_dir)
    if not path.is_file():
        raise CalibrationMissing(f"{path} does not exist: embed through the pipeline, which calibrates first")
    return path


def ensure_calibration(spec: BackboneSpec, images: pd.DataFrame, cache_dir: Path, log=None) -> str | None:
    """Calibrates the int8 engine on the `CALIBRATION_IMAGES` images of `images` (columns file, sha256)
    with the smallest hashes (the same ones whatever order the labels came in), unless a calibration
    exists already: it is never replaced, so the cache it names stays valid. The caller holds the
    calibration's lock (embeddings.prepare_engine)."""
    if spec.engine == "eager":
        return None
    path = calibration_file(spec, cache_dir)
    if not path.is_file():
        chosen = images.drop_duplicates("sha256").sort_values("sha256").head(CALIBRATION_IMAGES)
        if log:
            log(f"calibrating {spec.architecture} for int8 inference on {len(chosen)} images")
        maxima = _maxima(spec, [Path(p) for p in chosen["file"]])
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file(maxima, str(tmp), metadata={"alpha": str(quantized.SMOOTHING_ALPHA),
                                                  "images": ",".join(chosen["sha256"])})
    return calibration_id(spec, cache_dir)


def create_inference_backbone(spec: BackboneSpec, cache_dir: Path) -> torch.nn.Module:
    """The frozen backbone (pooled features) as its engine runs it."""
    model = _eager_backbone(spec)
    if spec.engine == "eager":
        return model
    return quantized.quantize_linears(model, load_file(str(_existing_calibration(spec, cache_dir))))


def _eager_backbone(spec: BackboneSpec) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        # A randomly initialised backbone must be the same one in every chunk and every run: their
        # embeddings share one cache. (Pretrained weights don't depend on the seed.)
        torch.manual_seed(0)
        return create_backbone(spec, num_classes=0).eval()


def _maxima(spec: BackboneSpec, files: list[Path]) -> dict[str, torch.Tensor]:
    model = _eager_backbone(spec)
    transform = timm.data.create_transform(**data_config(model), is_training=False)
    batches = (torch.stack([transform(open_rgb(f)) for f in files[i:i + _BATCH]]) for i in range(0, len(files), _BATCH))
    return {name: value.contiguous() for name, value in quantized.activation_maxima(model, batches).items()}
