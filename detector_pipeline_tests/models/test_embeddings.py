"""Frozen-backbone embeddings: a randomly initialised backbone is the same in every chunk and run; the
int8 engine is calibrated once, and its embeddings live in a cache of their own."""

import numpy as np
import pandas as pd
import pytest
import torch

from detector_pipeline.models.backbones import BackboneSpec
from detector_pipeline.models.calibration import CalibrationMissing, calibration_file
from detector_pipeline.models.embeddings import (
    cache_of,
    embed_images,
    embed_with_cache,
)
from detector_pipeline_tests.helpers import write_tiny_dataset


def test_a_random_backbone_embeds_the_same_way_whatever_ran_before(tmp_path):
    labels = write_tiny_dataset(tmp_path / "data", n=4)
    todo = pd.DataFrame({"file": sorted(str(p) for p in (labels.parent / "img").glob("*.png"))})
    spec = BackboneSpec("test_vit", "random")
    first = embed_images(spec, todo, tmp_path / "cache", 2, torch.device("cpu"))
    torch.rand(1000)  # other work in the same process moves the global random state
    again = embed_images(spec, todo, tmp_path / "cache", 2, torch.device("cpu"))
    assert first.shape[0] == 4 and (first == again).all()


def _images(labels_path) -> pd.DataFrame:
    files = sorted((labels_path.parent / "img").glob("*.png"))
    return pd.DataFrame({"file": [str(p) for p in files], "sha256": [f"{i:064x}" for i in range(len(files))]})


def test_the_int8_engine_is_calibrated_once_and_keeps_its_own_cache(tmp_path):
    images, cache = _images(write_tiny_dataset(tmp_path / "data", n=6)), tmp_path / "cache"
    eager, int8 = BackboneSpec("test_vit", "random"), BackboneSpec("test_vit", "random", engine="int8")
    with pytest.raises(CalibrationMissing):
        embed_images(int8, images, cache, 2, torch.device("cpu"))
    quantized = embed_with_cache(int8, images, cache, 4, torch.device("cpu"))
    calibration = calibration_file(int8, cache).read_bytes()
    reference = embed_with_cache(eager, images, cache, 4, torch.device("cpu"))
    again = embed_with_cache(int8, images.iloc[:3], cache, 4, torch.device("cpu"))  # new labels: no recalibration

    assert calibration_file(int8, cache).read_bytes() == calibration
    assert quantized.calibration and quantized.calibration in cache_of(int8, cache).folder.name
    assert cache_of(int8, cache).folder != cache_of(eager, cache).folder and reference.calibration is None
    assert quantized.backbone["engine"] == "int8" and "int8 inference" in quantized.description
    assert again.computed == 0 and again.calibration == quantized.calibration
    a, b = (np.stack(s.table["embedding"].to_numpy()) for s in (quantized, reference))
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.99
