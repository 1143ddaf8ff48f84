"""feed_scores and `detector-pipeline score`: a feed scored with a saved detector, streaming, batched,
with progress; a parquet of decisions."""

import hashlib
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from detector_pipeline.config.device import pick_device
from detector_pipeline.data.images import BadImage, decode_rgb, read_regular_file
from detector_pipeline.models.detector import load_detector, probabilities
from detector_pipeline.registry import artifacts

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
SCHEMA = pa.schema([("path", pa.string()), ("sha256", pa.string()), ("p_ai", pa.float32()),
                    ("decision", pa.string()), ("model_version", pa.string()), ("error", pa.string())])


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


def score_to_parquet(detector_folder: Path, threshold: float, inputs: Iterable[str | Path], out: Path,
                     batch_size: int = 16, device: str = "auto", log=print, review_band: float = 0.0,
                     num_workers: int = 0) -> dict:
    """Writes one row per input; memory stays flat whatever the number of images. `decision` is
    `ai` at or above the threshold, `review` within `review_band` below it, else `real`; an image
    that can't be decoded gets `error` and no score."""
    dev = pick_device(device)
    detector = load_detector(detector_folder, dev)
    normalize = detector.preprocessing.normalizer(dev)
    loader = DataLoader(DecodedInputs(inputs, detector.preprocessing.transform(train=False)), batch_size=batch_size,
                        num_workers=num_workers, collate_fn=_collate, pin_memory=dev.type == "cuda")
    counts = {"ai": 0, "review": 0, "real": 0, "error": 0}
    started, done = time.time(), 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with artifacts.atomic_path(out) as tmp, pq.ParquetWriter(tmp, SCHEMA) as writer:
        for items, x in loader:
            scores = iter([] if x is None else probabilities(detector.model, x, normalize, dev, detector.amp))
            rows = []
            for path, sha256, tensor, error in items:
                p = None if tensor is None else float(next(scores))
                decision = "error" if p is None else "ai" if p >= threshold else "review" if p >= threshold - review_band else "real"
                counts[decision] += 1
                rows.append({"path": path, "sha256": sha256, "p_ai": p, "decision": decision,
                             "model_version": detector.version, "error": error})
            writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA))
            done += len(items)
            log(f"scored {done} images ({done / (time.time() - started):.1f} img/s)")
    return {"images": done, "model_version": detector.version, "threshold": threshold, **counts, "output": str(out)}
