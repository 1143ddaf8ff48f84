"""What several test modules build the same way: the tiny generated data set, the pipeline's settings
on it, and a Dagster instance that has trained on it. Not a test module: the fixtures that use these
are in conftest.py; tests import the plain functions from here (pytest advises against importing
conftest.py, and a test module imported by another runs its tests twice)."""

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from PIL import Image

from detector_pipeline.data.batches import BASE_BATCH
from detector_pipeline.defs.assets import ASSETS, CHECKS, TRAINING_ASSETS
from detector_pipeline.defs.resources import PipelineSettings, pipeline_resources

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def write_tiny_dataset(root: Path, n: int = 64, seed: int = 0, side: int = 72, demo_columns: bool = False) -> Path:
    """Smooth 'real' images and 'generated' ones with a checkerboard, a teacher score per image,
    two images per source group. `demo_columns` adds the demo set's optional columns (family, is_ai,
    generator, source_package, family_held_out, source_held_out), with every eighth image from a
    held-out family and every eighth source group's real images from a held-out source.
    Returns the labels parquet path."""
    rng = np.random.default_rng(seed)
    rows = []
    (root / "img").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        is_ai = i % 4 == 0
        base = rng.normal(128, 30, (side // 8, side // 8, 3))
        pixels = np.kron(base, np.ones((8, 8, 1)))
        if is_ai:
            pixels += 40 * ((np.indices((side, side)).sum(0) % 2)[..., None] - 0.5)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        path = f"img/{i:03d}.png"
        image.save(root / path)
        score = float(np.clip(rng.normal(0.85 if is_ai else 0.05, 0.08), 0, 1))
        row = {"image_path": path, "ai_score": score, "source_group": f"g{i // 2}"}
        if demo_columns:
            family = ("held_out_gen" if i % 8 == 0 else "checker") if is_ai else "real"
            row.update(family=family, is_ai=is_ai, generator=None if family == "real" else f"{family}-v1",
                       source_package=f"pkg{i % 3}", family_held_out=family == "held_out_gen",
                       source_held_out=(i // 2) % 8 == 3)
        rows.append(row)
    labels = root / "labels.parquet"
    pd.DataFrame(rows).to_parquet(labels, index=False)
    return labels


def settings_for(labels: Path, tmp_path: Path) -> PipelineSettings:
    """The tiny profile on these labels, everything the pipeline writes under tmp_path."""
    return PipelineSettings(profile="tiny", labels_path=str(labels), images_root=str(labels.parent),
                            data_dir=str(tmp_path / "artifacts"), weights_dir=str(tmp_path / "weights"),
                            incoming_dir=str(tmp_path / "incoming"), feed_dir=str(labels.parent / "img"),
                            device="cpu")


def materialize_base(settings: PipelineSettings, instance: dg.DagsterInstance, **kwargs) -> dg.ExecuteInProcessResult:
    if not instance.has_dynamic_partition("label_batches", BASE_BATCH):
        instance.add_dynamic_partitions("label_batches", [BASE_BATCH])
    return dg.materialize([*ASSETS, *CHECKS], selection=[a.key for a in TRAINING_ASSETS], partition_key=BASE_BATCH,
                          resources=pipeline_resources(settings), instance=instance, **kwargs)


def trained_on(settings: PipelineSettings, tmp_path: Path):
    """A real instance on disk (schedules need one), in the test's own folder, that has trained on the
    base labels: yields (settings, instance). Dagster keeps a process-wide pointer to the last
    instance's state storage, so its files must outlive the test."""
    (tmp_path / "dagster_home").mkdir()
    with dg.DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster_home")) as instance:
        assert materialize_base(settings, instance).success
        yield settings, instance
