"""The ONNX export of a saved detector: P(AI) within 1e-4 of PyTorch on real images, the same feed
parquet from either engine, and the CLI's one-line errors.

The detector here is the real pretrained MobileNetV2 (data/weights, the demo profile's backbone) with a
seeded random single-logit head, standardized so that its logits spread over about one unit on demo
crops: an untrained head (p = 0.5 everywhere) or a saturated one (p = 0 or 1) would make any export
look exact."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from detector_pipeline.cli import main
from detector_pipeline.data.images import open_rgb
from detector_pipeline.errors import ArtifactError
from detector_pipeline.export import onnx_export
from detector_pipeline.export.onnx_export import export_dir_for, export_onnx, load_onnx_engine
from detector_pipeline.models.backbones import BackboneSpec, create_backbone
from detector_pipeline.models.detector import Preprocessing
from detector_pipeline.models.offline_weights import MOBILENET_V2
from detector_pipeline.models.scorer import DetectorScorer
from detector_pipeline.registry import pointer as registry
from detector_pipeline.tasks.scoring import score_to_parquet
from detector_pipeline.training.saved import save_detector
from detector_pipeline.training.settings import TrainSettings
from detector_pipeline_tests.helpers import PROJECT_ROOT, write_tiny_dataset

DEMO_IMAGES = sorted((PROJECT_ROOT / "data" / "demo" / "images").glob("*.jpg"))
PARITY_IMAGES = DEMO_IMAGES[:64]


def _weights() -> Path:
    path = PROJECT_ROOT / "data" / "weights" / MOBILENET_V2.filename
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make weights` (make test does) before these tests")
    return path


@torch.inference_mode()
def _spread_head(model: torch.nn.Module, preprocessing: Preprocessing) -> torch.nn.Module:
    """A seeded head whose logits have mean 0 and std 1 on 8 demo crops (not the parity ones)."""
    crops = torch.stack([preprocessing.transform(train=False)(open_rgb(p)) for p in DEMO_IMAGES[-8:]])
    head = model.eval().get_classifier()
    torch.manual_seed(0)
    torch.nn.init.normal_(head.weight)
    torch.nn.init.zeros_(head.bias)
    logits = model(preprocessing.normalizer(torch.device("cpu"))(crops))
    head.weight /= logits.std()
    head.bias -= logits.mean() / logits.std()
    return model


@pytest.fixture(scope="module")
def mobilenet_detector(tmp_path_factory) -> Path:
    """A saved detector version as training writes one (config with backbone, preprocessing, settings)."""
    spec = BackboneSpec(MOBILENET_V2.architecture, "file", str(_weights()))
    settings = TrainSettings(epochs=1, batch_size=16, lr=1e-4, weight_decay=0.05, pos_weight=None, amp="fp32")
    preprocessing = settings.preprocessing(spec.architecture)
    model = _spread_head(create_backbone(spec, num_classes=1), preprocessing)
    return save_detector(tmp_path_factory.mktemp("data") / "models", model.state_dict(), spec, settings,
                         labels_version="0" * 16)[1]


@pytest.fixture(scope="module")
def exported(mobilenet_detector) -> dict:
    return export_onnx(mobilenet_detector, export_dir_for(mobilenet_detector), PARITY_IMAGES, threshold=0.5)


@pytest.mark.slow  # the real MobileNetV2 exported and run on 64 demo images by both engines
def test_the_export_matches_pytorch_on_64_demo_images_and_records_its_recipe(mobilenet_detector, exported):
    assert exported["n_parity_images"] >= 64 and exported["passed"]
    assert exported["max_abs_delta_p"] <= 1e-4 == exported["tolerance"]
    print(f"parity: max |delta p_ai| = {exported['max_abs_delta_p']:.2g} on {exported['n_parity_images']} images")
    folder = export_dir_for(mobilenet_detector)
    assert Path(exported["onnx"]) == folder / "model.onnx" and folder == mobilenet_detector / "export" / "onnx"
    recipe = json.loads(Path(exported["preprocessing"]).read_text())
    expected = Preprocessing.for_backbone(MOBILENET_V2.architecture, 224, True)
    assert recipe["version"] == exported["version"] == mobilenet_detector.name
    assert (recipe["crop_size"], recipe["native_crops"]) == (224, True)
    assert recipe["mean"] == list(expected.mean) and recipe["std"] == list(expected.std)
    # the graph is the network alone: the normalized crop in, the logit out (models/scorer.py does the rest)
    assert recipe["input"]["name"] == "x" and recipe["input"]["dtype"] == "float32" and "std" in recipe["input"]["layout"]
    assert recipe["output"]["name"] == "logit" and "1 / (1 + exp(-logit))" in recipe["output"]["meaning"]
    assert recipe["threshold"] == 0.5 and recipe["opset"] == 17
    assert "bicubic" in recipe["resize"] and "native resolution" in recipe["resize"]
    assert set(recipe["exported_with"]) == {"torch", "onnx", "onnxruntime"}
    assert recipe["parity"]["passed"] and recipe["parity"]["n_parity_images"] == exported["n_parity_images"]
    assert recipe["onnx_sha256"] == hashlib.sha256(Path(exported["onnx"]).read_bytes()).hexdigest()

    engine = load_onnx_engine(folder)  # the graph alone: normalized crops in, logits [N, 1] out
    preprocessing = Preprocessing.of_config(json.loads((mobilenet_detector / "config.json").read_text()))
    crops = torch.stack([preprocessing.transform(train=False)(open_rgb(p)) for p in PARITY_IMAGES[:16]])
    logits = engine(preprocessing.normalizer(torch.device("cpu"))(crops))
    assert logits.shape == (16, 1) and logits.dtype == torch.float32
    p = torch.sigmoid(logits).numpy().ravel()
    assert p.std() > 0.05 and ((p > 0.05) & (p < 0.95)).sum() >= 8  # spread, not saturated: the parity means something


@pytest.mark.slow  # the real MobileNetV2, exported, scoring with both engines
def test_feed_scoring_gives_the_same_parquet_with_either_engine(mobilenet_detector, exported, tmp_path):
    small = tmp_path / "small.jpg"  # short side below the crop: upscaled (bicubic) before cropping
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (150, 100, 3), dtype=np.uint8)).save(small)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    inputs = [*DEMO_IMAGES[64:78], small, broken]
    outs = {engine: tmp_path / f"{engine}.parquet" for engine in ("torch", "onnx")}
    summaries = {engine: score_to_parquet(mobilenet_detector, 0.5, inputs, out, batch_size=8, device="cpu",
                                          log=lambda _: None, engine=engine) for engine, out in outs.items()}
    torch_rows, onnx_rows = (pd.read_parquet(out) for out in outs.values())

    assert pq.read_schema(outs["torch"]) == pq.read_schema(outs["onnx"])
    assert torch_rows["path"].tolist() == onnx_rows["path"].tolist() == [str(p) for p in inputs]
    for column in ("sha256", "decision", "model_version", "error"):
        assert torch_rows[column].tolist() == onnx_rows[column].tolist(), column
    assert float(np.nanmax(np.abs(torch_rows["p_ai"] - onnx_rows["p_ai"]))) <= 1e-4
    assert set(torch_rows["decision"]) == {"ai", "real", "error"}  # the threshold cuts through the scores
    assert {e: s.pop("engine") for e, s in summaries.items()} == {"torch": "torch", "onnx": "onnx"}
    assert {k: v for k, v in summaries["torch"].items() if k != "output"} == \
        {k: v for k, v in summaries["onnx"].items() if k != "output"}


def _tiny_detector(data: Path) -> str:
    """A small saved detector (random test_convnext, 64-pixel crops), promoted: the CLI's side of things."""
    spec = BackboneSpec("test_convnext", "random")
    torch.manual_seed(0)
    settings = TrainSettings(epochs=1, batch_size=4, lr=1e-4, weight_decay=0.05, pos_weight=None, crop_size=64)
    version, folder, _ = save_detector(data / "models", create_backbone(spec, 1).state_dict(), spec, settings,
                                       labels_version="0" * 16)
    registry.promote(data, {"version": version, "folder": registry.relative_folder(data, folder), "threshold": 0.5})
    return version


@pytest.fixture
def cli_data(tmp_path, monkeypatch) -> Path:
    data = tmp_path / "data"
    labels = write_tiny_dataset(tmp_path / "labelled", n=8)
    monkeypatch.setenv("DETECTOR_DATA_DIR", str(data))
    monkeypatch.setenv("DETECTOR_LABELS", str(labels))
    monkeypatch.delenv("DETECTOR_IMAGES_ROOT", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return data


def _one_line_error(err: str, *words: str) -> str:
    err = err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert all(w in err for w in words), err
    return err


def test_export_of_an_unknown_version_is_exit_4_in_one_line(cli_data, capsys):
    assert main(["export", "0123456789abcdef", "--format", "onnx"]) == 4
    _one_line_error(capsys.readouterr().err, "0123456789abcdef", "detector-pipeline models")
    with pytest.raises(SystemExit) as exited:  # argparse: onnx is the only format
        main(["export", "0123456789abcdef", "--format", "tflite"])
    assert exited.value.code == 2 and "invalid choice: 'tflite'" in capsys.readouterr().err


def test_score_with_onnx_needs_the_export_then_uses_it_and_refuses_a_changed_graph(cli_data, tmp_path, capsys):
    version = _tiny_detector(cli_data)
    images, out = cli_data.parent / "labelled" / "img", str(tmp_path / "s.parquet")
    assert main(["score", str(images), "--out", out, "--quiet", "--engine", "onnx"]) == 3
    _one_line_error(capsys.readouterr().err, version, f"detector-pipeline export {version} --format onnx")

    assert main(["export", version, "--format", "onnx"]) == 0
    printed = capsys.readouterr().out
    folder = cli_data / "models" / "detector" / version / "export" / "onnx"
    assert f"onnx: {folder / 'model.onnx'}" in printed and f"preprocessing: {folder / 'preprocessing.json'}" in printed
    assert "parity: max |Δp_ai| = " in printed and "on 8 images (tolerance 1e-4)" in printed
    assert json.loads((folder / "preprocessing.json").read_text())["threshold"] == 0.5  # the promoted one

    assert main(["score", str(images), "--out", out, "--quiet", "--engine", "onnx"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["engine"] == "onnx" and summary["images"] == 8 and summary["model_version"] == version

    (folder / "model.onnx").write_bytes((folder / "model.onnx").read_bytes() + b"\0")
    assert main(["score", str(images), "--out", out, "--engine", "onnx"]) == 3
    _one_line_error(capsys.readouterr().err, "model.onnx", "sha256",
                    f"detector-pipeline export {version} --format onnx")


def test_an_export_that_fails_parity_is_exit_3_and_never_scores(cli_data, tmp_path, capsys, monkeypatch):
    version = _tiny_detector(cli_data)
    with monkeypatch.context() as patch:
        patch.setattr(onnx_export, "TOLERANCE", -1.0)  # any difference at all fails
        assert main(["export", version, "--parity-images", "4"]) == 3
    printed = capsys.readouterr()
    assert "parity: max |Δp_ai| = " in printed.out and "on 4 images" in printed.out
    _one_line_error(printed.err, version, "failed its parity check", "do not serve it")
    images = cli_data.parent / "labelled" / "img"
    assert main(["score", str(images), "--out", str(tmp_path / "s.parquet"), "--engine", "onnx"]) == 3
    _one_line_error(capsys.readouterr().err, "failed its parity check", "--engine torch")


def test_an_export_of_the_earlier_layout_is_refused_with_how_to_redo_it(tmp_path):
    """An export whose graph took uint8 crops and gave P(AI) would be fed normalized crops: refused."""
    data = tmp_path / "data"
    folder = data / "models" / "detector" / _tiny_detector(data)
    images = sorted((write_tiny_dataset(tmp_path / "feed", n=4).parent / "img").glob("*.png"))
    assert export_onnx(folder, export_dir_for(folder), images)["passed"]
    assert DetectorScorer.load(folder, "onnx").version == folder.name
    recipe_file = export_dir_for(folder) / "preprocessing.json"
    recipe = json.loads(recipe_file.read_text())
    recipe_file.write_text(json.dumps({**recipe, "input": {**recipe["input"], "name": "pixels", "dtype": "uint8"}}))
    with pytest.raises(ArtifactError, match="'pixels'.*detector-pipeline export .* --format onnx"):
        DetectorScorer.load(folder, "onnx")


@pytest.mark.slow  # the bench's export and timed scoring rounds
def test_the_bench_times_feed_scoring_with_both_engines(tiny_dataset, tmp_path):
    """bench/stages.py's scoring engines, in process (run_bench runs them in a fresh one; its own test
    in integration/test_bench.py takes minutes): both img/s, on the same images, and the delta."""
    from detector_pipeline import bench
    from detector_pipeline.bench.stages import _scoring_engines
    from detector_pipeline.config.profiles import get_profile

    paths = tuple(bench.sample_images(tiny_dataset, tiny_dataset.parent, 12))
    plan = bench.BenchPlan(get_profile("tiny", tmp_path / "no-weights"), paths, device="cpu", engine_images=8)
    figures = _scoring_engines(plan, paths * 2)
    assert set(figures) == {"torch", "onnx"}
    for engine in ("torch", "onnx"):
        assert figures[engine]["img_s"] > 0 and figures[engine]["images"] == 24 and figures[engine]["rounds"] == 2
    assert figures["onnx"]["max_abs_delta_p"] <= 1e-4 and figures["onnx"]["parity_images"] == 8
