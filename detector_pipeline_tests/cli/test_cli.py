"""Operators get one line: what is wrong, which file, what to do, and a documented exit code."""

import json
import os
import shutil
import signal
from pathlib import Path

import pandas as pd
import pytest
import torch

from detector_pipeline.cli import main
from detector_pipeline.errors import ArtifactError
from detector_pipeline.models.backbones import BackboneSpec, create_backbone
from detector_pipeline.registry import pointer as registry
from detector_pipeline.registry import reports
from detector_pipeline.registry.artifacts import write_json_atomic
from detector_pipeline.training.saved import save_detector
from detector_pipeline.training.settings import TrainSettings
from detector_pipeline_tests.helpers import write_tiny_dataset


def save_tiny_detector(data: Path, seed: int = 0, threshold: float = 0.5) -> dict:
    """A detector version as training and its evaluation leave it (weights, config, model card; a report
    with an operating point), without the training: the CLI only reads these files."""
    spec = BackboneSpec("test_convnext", "random")
    torch.manual_seed(seed)
    settings = TrainSettings(epochs=1, batch_size=4, lr=1e-4, weight_decay=0.05, pos_weight=None, crop_size=64,
                             seed=seed)
    version, folder, config = save_detector(data / "models", create_backbone(spec, 1).state_dict(), spec, settings,
                                            labels_version="0" * 16)
    write_json_atomic(folder / "model_card.json", {**config, "version": version, "metrics": {}})
    write_tiny_report(data, version, threshold)
    return {"version": version, "folder": registry.relative_folder(data, folder), "threshold": threshold}


def write_tiny_report(data: Path, version: str, threshold: float, detector: dict | None = None) -> str:
    """The parts of an evaluation report the CLI reads: its id, the detector's test figures, the threshold."""
    report_id = f"{version}-probe"
    write_json_atomic(reports.report_folder(data, report_id) / reports.REPORT, {
        "report_id": report_id, "detector_version": version, "detector": detector or {},
        "operating_point": {"threshold": threshold}})
    return report_id


@pytest.fixture
def data(tmp_path, monkeypatch) -> Path:
    data = tmp_path / "data"
    record = save_tiny_detector(data)
    registry.promote(data, record)
    monkeypatch.setenv("DETECTOR_DATA_DIR", str(data))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return data


@pytest.fixture
def images(tmp_path) -> Path:
    return write_tiny_dataset(tmp_path / "feed", n=3).parent / "img"


def _one_line_error(capsys, code: int, *words: str) -> str:
    err = capsys.readouterr().err.strip()
    assert code != 0 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and all(w in err for w in words), err
    return err


def test_scoring_with_the_promoted_model_works(data, images, tmp_path, capsys):
    assert main(["score", str(images), "--out", str(tmp_path / "s.parquet"), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 3
    assert not Path(registry.read_promoted(data)["folder"]).is_absolute()


def test_a_corrupt_pointer_is_one_line_and_exit_3(data, images, tmp_path, capsys):
    (data / "registry" / "promoted.json").write_text("{not json")
    assert main(["models"]) == 3
    _one_line_error(capsys, 3, "promoted.json", "unreadable", "promote VERSION")
    assert main(["score", str(images), "--out", str(tmp_path / "s.parquet")]) == 3
    _one_line_error(capsys, 3, "promoted.json")


def test_a_deleted_model_folder_shows_as_missing_and_scoring_says_so(data, images, tmp_path, capsys):
    version = registry.read_promoted(data)["version"]
    shutil.rmtree(data / "models" / "detector" / version)
    assert main(["models", "--json"]) == 0
    assert [(r["version"], r["status"]) for r in json.loads(capsys.readouterr().out)] == [(version, "missing")]
    assert main(["score", str(images), "--out", str(tmp_path / "s.parquet")]) == 3
    _one_line_error(capsys, 3, version, "missing", "promote VERSION")


def test_a_tampered_model_file_is_refused_in_one_line(data, images, tmp_path, capsys):
    weights = data / registry.read_promoted(data)["folder"] / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF
    weights.write_bytes(bytes(raw))
    assert main(["score", str(images), "--out", str(tmp_path / "s.parquet")]) == 3
    _one_line_error(capsys, 3, "does not match its version id", str(weights.parent))
    with pytest.raises(ArtifactError):  # --debug: the traceback, for a developer
        main(["score", str(images), "--out", str(tmp_path / "s.parquet"), "--debug"])


def test_a_fifo_on_the_command_line_gets_an_error_row_and_nothing_hangs(data, images, tmp_path, capsys):
    fifo = tmp_path / "upload.jpg"
    os.mkfifo(fifo)
    signal.alarm(60)  # a regression would block on open(): fail instead of hanging the suite
    try:
        assert main(["score", str(fifo), str(images), "--out", str(tmp_path / "s.parquet"), "--quiet"]) == 0
    finally:
        signal.alarm(0)
    rows = pd.read_parquet(tmp_path / "s.parquet")
    assert rows.loc[rows["path"] == str(fifo), "error"].tolist() == ["not a regular file: a FIFO"]


def test_bad_arguments_and_unknown_versions_have_their_codes(data, images, tmp_path, capsys):
    assert main(["score", str(images), "--threshold", "1.5"]) == 2
    _one_line_error(capsys, 2, "--threshold")
    assert main(["lineage", "0123456789abcdef"]) == 4
    _one_line_error(capsys, 4, "0123456789abcdef", "detector-pipeline models")
    assert main(["promote", "0123456789abcdef"]) == 4
    _one_line_error(capsys, 4, "0123456789abcdef")
    assert main(["validate", str(tmp_path / "nope.parquet"), "--root", str(tmp_path)]) == 2
    _one_line_error(capsys, 2, "nope.parquet")
    assert main(["review", "b1", "--serve", "--reviewer", "../ana"]) == 2
    _one_line_error(capsys, 2, "reviewer name '../ana'")
    assert main(["review", "b1", "--serve", "--reviewer", "ana"]) == 4
    _one_line_error(capsys, 4, "batch 'b1' has no evaluation")


def test_bench_photographs_smaller_than_a_crop_are_one_line(tmp_path, monkeypatch, capsys):
    from PIL import Image

    monkeypatch.setenv("DETECTOR_LABELS", str(write_tiny_dataset(tmp_path / "set", n=8)))
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (200, 150)).save(photos / "thumb.jpg")
    assert main(["bench", "--profile", "tiny", "--decode", "--photos", str(photos), "--out", str(tmp_path / "b.json")]) == 2
    _one_line_error(capsys, 2, "thumb.jpg", "224 px")
    assert not (tmp_path / "b.json").exists()


def test_a_dagster_home_that_is_not_a_folder_is_bad_input(data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "no-such-folder"))
    assert main(["lineage", "0123456789abcdef"]) == 2
    _one_line_error(capsys, 2, "DAGSTER_HOME", "no-such-folder", "mkdir -p")


def test_promote_repairs_the_registry_and_force_is_recorded(data, capsys):
    other = save_tiny_detector(data, seed=1)
    (data / "registry" / "promoted.json").write_text("garbage")
    # Without --force the gate needs the current validation split, which this instance has not got.
    assert main(["promote", other["version"]]) == 3
    _one_line_error(capsys, 3, "training_labels", "--force")
    assert main(["promote", other["version"], "--force", "pointer was corrupt"]) == 0
    assert registry.read_promoted(data)["version"] == other["version"]
    assert registry.promotion_history(data)[-1]["forced"] == "pointer was corrupt"
    # the threshold comes from the version's evaluation report, as in the promoted_detector asset
    assert registry.read_promoted(data)["report_id"] == f"{other['version']}-probe"
    assert "promoted detector: " + other["version"] in capsys.readouterr().out


def test_validate_json_reports_a_null_path_as_null(tmp_path, capsys):
    labels = write_tiny_dataset(tmp_path / "batch", n=3)
    table = pd.read_parquet(labels)
    table.loc[1, "image_path"] = None
    table.loc[2, "image_path"] = "nan"  # a file may be called that: it stays a string
    table.to_parquet(labels)
    assert main(["validate", str(labels), "--root", str(labels.parent), "--json"]) == 0
    quarantined = json.loads(capsys.readouterr().out)["quarantined"]
    assert [(row["image_path"], row["reason"]) for row in quarantined] == [(None, "null path"), ("nan", "missing file")]


def test_models_lists_the_in_distribution_and_held_out_test_figures(data, capsys):
    write_tiny_report(data, registry.read_promoted(data)["version"], 0.5,
                      {"test_in_distribution": {"roc_auc": 0.81, "pr_auc": 0.42}, "test_held_out": {"roc_auc": 0.67}})
    assert main(["models"]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert "test ROC" in header and "held-out ROC" in header
    assert "0.810" in row and "0.420" in row and "0.670" in row
