from pathlib import Path

import pandas as pd
import torch

from detector_pipeline.models.backbones import BackboneSpec, create_backbone
from detector_pipeline.tasks.scoring import iter_inputs, score_to_parquet
from detector_pipeline.training.saved import save_detector
from detector_pipeline.training.settings import TrainSettings
from detector_pipeline_tests.helpers import write_tiny_dataset


def _saved_detector(tmp_path: Path) -> Path:
    spec = BackboneSpec("test_convnext", "random")
    torch.manual_seed(0)
    model = create_backbone(spec, num_classes=1)
    settings = TrainSettings(epochs=1, batch_size=4, lr=1e-4, weight_decay=0.05, pos_weight=None, crop_size=64)
    return save_detector(tmp_path / "models", model.state_dict(), spec, settings, labels_version="0" * 16)[1]


def test_scoring_a_folder_writes_one_row_per_image(tmp_path):
    labels = write_tiny_dataset(tmp_path / "feed", n=10)
    (labels.parent / "img" / "broken.jpg").write_bytes(b"not an image")
    folder = _saved_detector(tmp_path)
    messages = []
    out = tmp_path / "scores.parquet"
    summary = score_to_parquet(folder, 0.5, [labels.parent / "img"], out, batch_size=4, device="cpu", log=messages.append)
    scores = pd.read_parquet(out)
    assert len(scores) == summary["images"] == 11
    assert list(scores.columns) == ["path", "sha256", "p_ai", "decision", "model_version", "error"]
    good = scores[scores["error"].isna()]
    assert good["p_ai"].between(0, 1).all() and good["sha256"].str.len().eq(64).all()
    assert set(good["decision"]) <= {"ai", "real"} and (good["decision"] == "ai").eq(good["p_ai"] >= 0.5).all()
    assert scores.loc[scores["error"].notna(), "decision"].tolist() == ["error"]
    assert scores["model_version"].eq(folder.name).all()
    assert len(messages) == 3  # progress after every batch of 4


def test_inputs_can_be_files_folders_and_parquets(tmp_path):
    labels = write_tiny_dataset(tmp_path / "feed", n=4)
    listed = list(iter_inputs([labels, labels.parent / "img", labels.parent / "img" / "000.png"]))
    assert len(listed) == 9
    assert listed[0] == labels.parent / "img" / "000.png"


def test_special_files_never_block_and_get_an_error_row(tmp_path):
    """A FIFO named directly (or as a 'parquet') would block a plain open() forever; a device would be
    read without end. Each gets an error row, and a FIFO inside a folder is not listed at all."""
    import os
    import signal

    feed = tmp_path / "feed"
    labels = write_tiny_dataset(feed, n=2)
    fifo, fifo_parquet = tmp_path / "pipe.jpg", tmp_path / "pipe.parquet"
    os.mkfifo(fifo)
    os.mkfifo(fifo_parquet)
    os.mkfifo(labels.parent / "img" / "inside.png")
    signal.alarm(60)  # a regression would hang here: fail the test instead
    try:
        out = tmp_path / "scores.parquet"
        summary = score_to_parquet(_saved_detector(tmp_path), 0.5, [fifo, fifo_parquet, "/dev/zero", labels.parent / "img"],
                                   out, batch_size=4, device="cpu", log=lambda _: None)
    finally:
        signal.alarm(0)
    scores = pd.read_parquet(out)
    assert summary["images"] == 5 and summary["error"] == 3
    errors = dict(zip(scores["path"], scores["error"]))
    assert errors[str(fifo)] == errors[str(fifo_parquet)] == "not a regular file: a FIFO"
    assert errors["/dev/zero"] == "not a regular file: a character device"
    assert scores["error"].isna().sum() == 2
