import gc
import os

# No model hub here: fail at once instead of retrying for a minute (tests of the hub path expect failure).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

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


@pytest.fixture(autouse=True)
def no_stale_dagster_instance():
    """Dagster keeps process-wide pointers to the last instance's defs-state storage; a DagsterInstance
    that is garbage-collected late resets them to the instance made before it, which may be disposed
    by then ("Attempted to resolve undefined DagsterInstance weakref" in a later test). Collect the
    previous tests' instances first, then clear the pointers: each test starts from none."""
    from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext
    from dagster._core.storage.defs_state.base import _current_storage

    gc.collect()
    DefinitionsLoadContext._instance = None
    _current_storage.set(None)
    yield


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    return write_tiny_dataset(tmp_path / "data")
