"""feed_scores and `detector-pipeline score`: a feed scored with a saved detector, streaming, batched,
with progress; a parquet of decisions."""

import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from detector_pipeline.evaluation.thresholds import decide
from detector_pipeline.models.scorer import DetectorScorer
from detector_pipeline.registry import artifacts
from detector_pipeline.registry.records import PromotedModel

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


class FeedInputs:
    """`iter_inputs` of the given inputs, re-iterable: each loader worker lists them for itself, so
    nothing holds the whole list."""

    def __init__(self, inputs: Iterable[str | Path]):
        self.inputs = list(inputs)

    def __iter__(self) -> Iterator[Path]:
        return iter_inputs(self.inputs)


def review_band(promoted: PromotedModel) -> float:
    """How far below the promoted threshold a score still goes to `review`: the report's review band
    (the threshold for a lower precision, chosen on validation)."""
    band = promoted.operating_point.get("review_band")
    return max(0.0, promoted.threshold - band[0]) if band else 0.0


def score_to_parquet(detector_folder: Path, threshold: float, inputs: Iterable[str | Path], out: Path,
                     batch_size: int = 16, device: str = "auto", log=print, review_band: float = 0.0,
                     num_workers: int = 0, engine: str = "torch") -> dict:
    """Writes one row per input; memory stays flat whatever the number of images. `decision` is
    `ai` at or above the threshold, `review` within `review_band` below it, else `real`; an image
    that can't be decoded gets `error` and no score. `engine`: "torch" (the saved weights, on
    `device`) or "onnx" (the version's ONNX export, made by `detector-pipeline export`, in ONNX
    Runtime on the CPU); the same rows either way."""
    scorer = DetectorScorer.load(detector_folder, engine, device, batch_size, num_workers)
    counts = {"ai": 0, "review": 0, "real": 0, "error": 0}
    started, done = time.time(), 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with artifacts.atomic_path(out) as tmp, pq.ParquetWriter(tmp, SCHEMA) as writer:
        for batch in scorer.stream(FeedInputs(inputs)):
            scores = [row.p_ai for row in batch if row.error is None]
            made = iter(zip(scores, decide(scores, threshold, review_band)))
            rows = []
            for row in batch:
                p, decision = (None, "error") if row.error is not None else next(made)
                counts[decision] += 1
                rows.append({"path": row.path, "sha256": row.sha256, "p_ai": p, "decision": decision,
                             "model_version": scorer.version, "error": row.error})
            writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA))
            done += len(batch)
            log(f"scored {done} images ({done / (time.time() - started):.1f} img/s)")
    return {"images": done, "model_version": scorer.version, "engine": engine, "threshold": threshold, **counts,
            "output": str(out)}
