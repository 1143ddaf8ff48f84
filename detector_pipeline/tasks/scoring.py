"""feed_scores and `detector-pipeline score`: a feed scored with a saved detector, streaming, batched,
with progress; a parquet of decisions."""

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from detector_pipeline.config.device import pick_device
from detector_pipeline.data.images import BadImage, decode_rgb, read_regular_file
from detector_pipeline.errors import BadInput
from detector_pipeline.evaluation.thresholds import decide
from detector_pipeline.export.onnx_export import load_export_of
from detector_pipeline.models.detector import load_detector, probabilities
from detector_pipeline.registry import artifacts

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
SCHEMA = pa.schema([("path", pa.string()), ("sha256", pa.string()), ("p_ai", pa.float32()),
                    ("decision", pa.string()), ("model_version", pa.string()), ("error", pa.string())])
ENGINES = ("torch", "onnx")


def iter_inputs(inputs: Iterable[str | Path]) -> Iterator[Path]:
    """Image files, folders (recursively, sorted) and parquet files with an `image_path` column
    (relative paths are relative to the parquet's folder), lazily."""
    for item in map(Path, inputs):
        if item.is_dir():
            yield from (p for p in sorted(item.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif item.suffix == ".parquet" and item.is_file():  # anything else becomes an error row, unopened
            for batch in pq.ParquetFile(item).iter_batches(columns=["image_path"], batch_size=4096):
                for value in batch.column(0).to_pylist():
                    path = Path(value)
                    yield path if path.is_absolute() else item.parent / path
        else:
            yield item


class DecodedInputs(IterableDataset):
    """(path, sha256, uint8 tensor or None, error) per input, streamed; with loader workers each takes
    every n-th input, so nothing holds the whole list."""

    def __init__(self, inputs: Iterable[str | Path], transform):
        self.inputs, self.transform = inputs, transform

    def __iter__(self):
        worker = get_worker_info()
        n, k = (worker.num_workers, worker.id) if worker else (1, 0)
        for i, path in enumerate(iter_inputs(self.inputs)):
            if i % n == k:
                yield self._decode(path)

    def _decode(self, path: Path):
        """One read: the hash and the pixels come from the same bytes."""
        try:
            data = read_regular_file(path)
            return str(path), hashlib.sha256(data).hexdigest(), self.transform(decode_rgb(data)), None
        except (BadImage, OSError) as exc:
            return str(path), None, None, str(exc)


def _collate(items: list[tuple]) -> tuple[list[tuple], torch.Tensor | None]:
    tensors = [x for _, _, x, _ in items if x is not None]
    return items, torch.stack(tensors) if tensors else None


def review_band(promoted: dict) -> float:
    """How far below the promoted threshold a score still goes to `review`: the report's review band
    (the threshold for a lower precision, chosen on validation)."""
    band = (promoted.get("operating_point") or {}).get("review_band")
    return max(0.0, promoted["threshold"] - band[0]) if band else 0.0


def score_to_parquet(detector_folder: Path, threshold: float, inputs: Iterable[str | Path], out: Path,
                     batch_size: int = 16, device: str = "auto", log=print, review_band: float = 0.0,
                     num_workers: int = 0, engine: str = "torch") -> dict:
    """Writes one row per input; memory stays flat whatever the number of images. `decision` is
    `ai` at or above the threshold, `review` within `review_band` below it, else `real`; an image
    that can't be decoded gets `error` and no score. `engine`: "torch" (the saved weights, on
    `device`) or "onnx" (the version's ONNX export, made by `detector-pipeline export`, in ONNX
    Runtime on the CPU); the same rows either way."""
    version, transform, score, pin = _scorer(detector_folder, engine, device)
    loader = DataLoader(DecodedInputs(inputs, transform), batch_size=batch_size,
                        num_workers=num_workers, collate_fn=_collate, pin_memory=pin)
    counts = {"ai": 0, "review": 0, "real": 0, "error": 0}
    started, done = time.time(), 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with artifacts.atomic_path(out) as tmp, pq.ParquetWriter(tmp, SCHEMA) as writer:
        for items, x in loader:
            scores = [] if x is None else score(x)
            made = iter(zip(map(float, scores), decide(scores, threshold, review_band)))
            rows = []
            for path, sha256, tensor, error in items:
                p, decision = (None, "error") if tensor is None else next(made)
                counts[decision] += 1
                rows.append({"path": path, "sha256": sha256, "p_ai": p, "decision": decision,
                             "model_version": version, "error": error})
            writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA))
            done += len(items)
            log(f"scored {done} images ({done / (time.time() - started):.1f} img/s)")
    return {"images": done, "model_version": version, "engine": engine, "threshold": threshold, **counts,
            "output": str(out)}


def _scorer(detector_folder: Path, engine: str, device: str) -> tuple[str, Callable, Callable, bool]:
    """(version, per-image transform, uint8 batch -> P(AI), pin loader memory) for one engine. The
    ONNX export scores the same uint8 crops: its graph holds the normalization and the sigmoid."""
    if engine == "onnx":
        exported = load_export_of(detector_folder)
        return exported.version, exported.transform, exported.p_ai, False
    if engine != "torch":
        raise BadInput(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    dev = pick_device(device)
    detector = load_detector(detector_folder, dev)
    normalize = detector.preprocessing.normalizer(dev)
    return (detector.version, detector.preprocessing.transform(train=False),
            lambda x: probabilities(detector.model, x, normalize, dev, detector.amp), dev.type == "cuda")
