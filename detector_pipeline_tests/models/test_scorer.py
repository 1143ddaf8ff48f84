"""The one scorer: either engine, paths or bytes, with or without loader workers, in memory or saved,
gives the same P(AI); an unusable image is a row with its error.

The detector is a random test_convnext whose head is scaled so that its logits spread over about one
unit on these images: with p = 0.5 everywhere any two paths would agree."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from detector_pipeline.data.images import BadImage, open_rgb
from detector_pipeline.errors import ArtifactError, BadInput
from detector_pipeline.export.onnx_export import export_dir_for, export_onnx
from detector_pipeline.models.backbones import BackboneSpec, create_backbone
from detector_pipeline.models.detector import Preprocessing
from detector_pipeline.models.scorer import DetectorScorer
from detector_pipeline.training.saved import save_detector
from detector_pipeline.training.settings import TrainSettings
from detector_pipeline_tests.helpers import write_tiny_dataset

SETTINGS = TrainSettings(epochs=1, batch_size=4, lr=1e-4, weight_decay=0.05, pos_weight=None, crop_size=64, amp="fp32")
SPEC = BackboneSpec("test_convnext", "random")


@torch.inference_mode()
def _spread_head(model: torch.nn.Module, images: list[Path]) -> torch.nn.Module:
    preprocessing = SETTINGS.preprocessing(SPEC.architecture)
    crops = torch.stack([preprocessing.transform(train=False)(open_rgb(p)) for p in images])
    logits = model.eval()(preprocessing.normalizer(torch.device("cpu"))(crops))
    head = model.get_classifier()
    head.weight /= logits.std()
    head.bias -= logits.mean() / logits.std()
    return model


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    labels = write_tiny_dataset(tmp_path_factory.mktemp("feed"), n=12)
    return sorted((labels.parent / "img").glob("*.png"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory, images) -> Path:
    """A saved version with its ONNX export (past its parity check) beside it."""
    torch.manual_seed(0)
    model = _spread_head(create_backbone(SPEC, num_classes=1), images)
    _, folder, _ = save_detector(tmp_path_factory.mktemp("data") / "models", model.state_dict(), SPEC, SETTINGS,
                                 labels_version="0" * 16)
    assert export_onnx(folder, export_dir_for(folder), images[:4])["passed"]
    return folder


def test_the_torch_and_onnx_engines_give_the_same_p_ai(saved, images):
    by_engine = {engine: DetectorScorer.load(saved, engine, "cpu", batch_size=5) for engine in ("torch", "onnx")}
    assert {s.version for s in by_engine.values()} == {saved.name}
    assert by_engine["torch"].preprocessing == by_engine["onnx"].preprocessing == SETTINGS.preprocessing("test_convnext")
    torch_p, onnx_p = (s.score(images) for s in by_engine.values())
    assert torch_p.shape == onnx_p.shape == (len(images),) and torch_p.dtype == onnx_p.dtype == np.float32
    assert torch_p.std() > 0.05  # spread: the comparison means something
    assert float(np.abs(torch_p.astype(np.float64) - onnx_p).max()) <= 1e-4


def test_paths_and_encoded_bytes_give_the_same_p_ai(saved, images):
    scorer = DetectorScorer.load(saved, "torch", "cpu", batch_size=5)
    from_paths = scorer.score(images)
    encoded = [p.read_bytes() for p in images]
    np.testing.assert_array_equal(scorer.score(encoded), from_paths)
    mixed = [encoded[i] if i % 2 else images[i] for i in range(len(images))]
    np.testing.assert_array_equal(scorer.score(mixed), from_paths)
    rows = [row for batch in scorer.stream(mixed) for row in batch]
    assert [row.path for row in rows[:2]] == [str(images[0]), None]  # bytes have no path; both have a hash
    assert all(len(row.sha256) == 64 for row in rows)


def test_loader_workers_keep_the_order_and_the_batches(saved, images):
    alone = DetectorScorer.load(saved, "torch", "cpu", batch_size=5).score(images)
    with_workers = DetectorScorer.load(saved, "torch", "cpu", batch_size=5, num_workers=2)
    np.testing.assert_array_equal(with_workers.score(images), alone)
    batches = [[row.index for row in batch] for batch in with_workers.stream(images)]
    assert batches == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]


def test_a_network_in_memory_scores_as_its_saved_version(saved, images):
    """Training's validation builds its scorer from the module it trains and the preprocessing it saves."""
    torch.manual_seed(0)
    model = _spread_head(create_backbone(SPEC, num_classes=1), images)
    in_memory = DetectorScorer.of_module(model, SETTINGS.preprocessing(SPEC.architecture), torch.device("cpu"), "fp32",
                                         batch_size=5)
    np.testing.assert_array_equal(in_memory.score(images), DetectorScorer.load(saved, "torch", "cpu", 5).score(images))


def test_a_perturbation_is_applied_to_the_decoded_image(saved, images):
    scorer = DetectorScorer.load(saved, "torch", "cpu", batch_size=5)
    flipped = []
    for path in images:
        buffer = io.BytesIO()
        open_rgb(path).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(buffer, format="PNG")  # lossless
        flipped.append(buffer.getvalue())
    perturbed = scorer.score(images, lambda image: image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    np.testing.assert_array_equal(perturbed, scorer.score(flipped))
    assert not np.array_equal(perturbed, scorer.score(images))


def test_an_unusable_image_is_a_row_with_its_error_and_score_refuses_it(saved, images, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    scorer = DetectorScorer.load(saved, "onnx", batch_size=2)
    rows = [row for batch in scorer.stream([images[0], broken, tmp_path / "missing.png", images[1]]) for row in batch]
    assert [(row.index, row.error) for row in rows] == [(0, None), (1, "not an image"), (2, "missing file"), (3, None)]
    assert all(row.p_ai is None and row.sha256 is None for row in rows[1:3])
    np.testing.assert_array_equal([rows[0].p_ai, rows[3].p_ai], scorer.score(images[:2]))
    with pytest.raises(BadImage, match="broken.jpg: not an image"):
        scorer.score([images[0], broken])


def test_an_unknown_engine_or_a_config_without_preprocessing_is_refused(saved):
    with pytest.raises(BadInput, match="engine must be one of torch, onnx"):
        DetectorScorer.load(saved, "tensorrt")
    config = json.loads((saved / "config.json").read_text())
    del config["preprocessing"]
    with pytest.raises(ArtifactError, match="records no preprocessing.*retrain it"):
        Preprocessing.of_config(config)


def test_the_model_inputs_are_what_the_engine_sees(saved, images):
    scorer = DetectorScorer.load(saved, "torch", "cpu", batch_size=5)
    x = scorer.model_inputs(images)
    assert x.shape == (len(images), 3, 64, 64) and x.dtype == torch.float32
    with torch.inference_mode():
        p = torch.sigmoid(scorer.engine(x).reshape(-1)).numpy()
    np.testing.assert_allclose(p, scorer.score(images), atol=1e-6)  # contiguous here, channels-last in scoring
