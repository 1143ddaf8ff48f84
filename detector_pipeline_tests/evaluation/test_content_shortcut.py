"""The content-shortcut baseline sees what a picture shows, not how it was made."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from detector_pipeline.evaluation import content_shortcut
from detector_pipeline.models.backbones import BackboneSpec

SPEC = BackboneSpec("test_convnext", "random")


def test_reduction_keeps_the_subject_and_removes_fine_traces():
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.integers(0, 255, (8, 8, 3)), np.ones((32, 32, 1))).astype(np.uint8)
    checker = (40 * ((np.indices((256, 256)).sum(0) % 2)[..., None] - 0.5)).astype(np.int16)
    traced = np.clip(smooth.astype(np.int16) + checker, 0, 255).astype(np.uint8)
    reduce = content_shortcut.ReducedToSubject(32, 224)
    a, b = (np.asarray(reduce(Image.fromarray(x)), dtype=float) for x in (smooth, traced))
    assert a.shape == (224, 224, 3)
    assert np.abs(a - b).mean() < 1.0  # the checkerboard is gone
    assert a.std() > 30  # the picture is not


def _images(folder: Path, n: int, fine_traces_only: bool) -> pd.DataFrame:
    """AI images differ from real ones by a checkerboard (a trace) or by their colour (content)."""
    rng = np.random.default_rng(1)
    rows = []
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        is_ai = i % 2 == 0
        base = rng.normal(120, 25, (8, 8, 3))
        if is_ai and not fine_traces_only:
            base[..., 0] += 60  # a redder subject
        pixels = np.kron(base, np.ones((12, 12, 1)))
        if is_ai and fine_traces_only:
            pixels += 30 * ((np.indices((96, 96)).sum(0) % 2)[..., None] - 0.5)
        path = folder / f"{i}.png"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
        rows.append({"file": str(path), "sha256": f"{folder.name}-{i}", "label": int(is_ai)})
    return pd.DataFrame(rows)


@pytest.mark.slow  # 200 images through a backbone, twice
@pytest.mark.parametrize("fine_traces_only", [True, False], ids=["traces", "content"])
def test_the_baseline_separates_content_but_not_traces(tmp_path, fine_traces_only):
    table = _images(tmp_path / ("traces" if fine_traces_only else "content"), 200, fine_traces_only)
    cache = tmp_path / "cache.parquet"
    torch.manual_seed(7)  # whatever the global random state, the features are the same
    content_shortcut.content_features(SPEC, table.iloc[:100], cache)  # train first, as a retrain adds images
    torch.manual_seed(99)
    scores = content_shortcut.content_scores(SPEC, table.iloc[:100], table.iloc[100:], cache)
    auc = content_shortcut.roc_auc_of(table.iloc[100:], scores)
    if fine_traces_only:
        assert auc < 0.75
    else:
        assert auc > 0.9
    again = content_shortcut.content_scores(SPEC, table.iloc[:100], table.iloc[100:], cache)  # from the cache
    np.testing.assert_allclose(again, scores)


def test_a_random_backbone_gives_the_same_features_on_every_call(tmp_path):
    table = _images(tmp_path / "img", 4, True)
    torch.manual_seed(1)
    first = content_shortcut.content_features(SPEC, table, tmp_path / "a.parquet")
    torch.manual_seed(2)
    second = content_shortcut.content_features(SPEC, table, tmp_path / "b.parquet")
    np.testing.assert_allclose(first, second)
