"""What a benchmark run measures: the profile, the image files and the protocol's counts."""

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from detector_pipeline.config.profiles import Profile

STAGES = ("embedding", "training", "scoring")


@dataclass(frozen=True)
class BenchPlan:
    profile: Profile
    paths: tuple[str, ...]  # the image files, in the order they are read
    device: str = "auto"
    model_only_batches: int = 10
    # CPU steps keep getting faster for several batches while the allocator settles (glibc raises its
    # mmap threshold as large blocks are freed): measuring earlier reads low (README: Performance).
    warmup_batches: int = 6
    # Scoring reads the sample this many times over: loading the model is a fixed cost that a real feed
    # of thousands of images amortizes; on 128 images it would dominate.
    scoring_repeats: int = 4
    # Training steps on a small CPU vary from one to the next: one epoch of the sample is too few
    # steps to compare with the model-only median.
    training_epochs: int = 4
    memory_images: int = 32  # memory check: the stage on this many images, then on memory_factor times as many
    memory_factor: int = 10
    engine_images: int = 32  # engines compared on this many images, calibrated on as many others
    # The probe's test ROC-AUC with each engine's embeddings needs every labelled image embedded twice
    # (eager fp32 and the profile's engine): minutes, so only when asked (make bench asks).
    probe_labels: Path | None = None
    probe_images_root: Path | None = None
    decode_photos: tuple[Path, ...] = ()  # large JPEG photographs for the decode stage (bench/decode.py)
    # adding 100 images to content-hash caches of these sizes (bench/cache_growth.py); 10^6 entries of
    # 768 float32 values are 3 GB on disk while the stage runs
    cache_sizes: tuple[int, ...] = (1_000, 100_000, 1_000_000)


def sample_images(labels_path: Path, images_root: Path, n: int, seed: int = 0) -> list[str]:
    """n image files of a labels table, a random mix of its families (whole table if shorter)."""
    table = pd.read_parquet(labels_path, columns=["image_path"])
    picked = table.sample(n=min(n, len(table)), random_state=seed)["image_path"]
    return [str(images_root / p) for p in picked]
