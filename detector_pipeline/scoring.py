"""Scoring a feed with a saved detector: streaming, batched, with progress; a parquet of decisions."""

import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from detector_pipeline import artifacts
from detector_pipeline.backbones import BackboneSpec, create_backbone
from detector_pipeline.device import pick_device
from detector_pipeline.images import BadImage, open_rgb
from detector_pipeline.labels import file_sha256
from detector_pipeline.training import TrainSettings, _transform

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
SCHEMA = pa.schema([("path", pa.string()), ("sha256", pa.string()), ("p_ai", pa.float32()),
                    ("decision", pa.string()), ("model_version", pa.string()), ("error", pa.string())])


def iter_inputs(inputs: Iterable[str | Path]) -> Iterator[Path]:
    """Image files, folders (recursively, sorted) and parquet files with an `image_path` column
    (relative paths are relative to the parquet's folder), lazily."""
    for item in map(Path, inputs):
        if item.is_dir():
            yield from (p for p in sorted(item.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif item.suffix == ".parquet":
            for batch in pq.ParquetFile(item).iter_batches(columns=["image_path"], batch_size=4096):
                for value in batch.column(0).to_pylist():
                    path = Path(value)
                    yield path if path.is_absolute() else item.parent / path
        else:
            yield item


def load_detector(folder: Path, device: torch.device) -> tuple[torch.nn.Module, TrainSettings, str]:
    state, config = artifacts.load_model_files(folder)
    model = create_backbone(BackboneSpec(**{**config["backbone"], "weights": "random"}), num_classes=1)
    model.load_state_dict(state)
    return model.to(device).eval(), TrainSettings(**config["settings"]), config["version"]


@torch.inference_mode()
def score_to_parquet(detector_folder: Path, threshold: float, inputs: Iterable[str | Path], out: Path,
                     batch_size: int = 64, device: str = "auto", log=print, review_band: float = 0.0) -> dict:
    """Writes one row per input; memory stays flat whatever the number of images. `decision` is
    `ai` at or above the threshold, `review` within `review_band` below it, else `real`; an image
    that can't be decoded gets `error` and no score."""
    dev = pick_device(device)
    model, settings, version = load_detector(detector_folder, dev)
    transform = _transform(settings, model, train=False)
    counts = {"ai": 0, "review": 0, "real": 0, "error": 0}
    started, done = time.time(), 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with artifacts.atomic_path(out) as tmp, pq.ParquetWriter(tmp, SCHEMA) as writer:
        for chunk in _chunks(iter_inputs(inputs), batch_size):
            rows, tensors = [], []
            for path in chunk:
                try:
                    tensors.append(transform(open_rgb(path)))
                    rows.append({"path": str(path), "sha256": file_sha256(path), "error": None})
                except (BadImage, OSError) as exc:
                    rows.append({"path": str(path), "sha256": None, "error": str(exc)})
            scores = iter(torch.sigmoid(model(torch.stack(tensors).to(dev)).float().squeeze(1)).cpu().numpy()
                          if tensors else [])
            for row in rows:
                p = None if row["error"] else float(next(scores))
                decision = "error" if p is None else "ai" if p >= threshold else "review" if p >= threshold - review_band else "real"
                counts[decision] += 1
                row.update(p_ai=p, decision=decision, model_version=version)
            writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA))
            done += len(chunk)
            log(f"scored {done} images ({done / (time.time() - started):.1f} img/s)")
    return {"images": done, "model_version": version, "threshold": threshold, **counts, "output": str(out)}


def _chunks(items: Iterator[Path], size: int) -> Iterator[list[Path]]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk

