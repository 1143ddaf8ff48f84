import json
import subprocess
import sys
import time

import torch

from detector_pipeline.models.backbones import BackboneSpec, create_backbone
from detector_pipeline.training.loop import init_binary_head
from detector_pipeline_tests.conftest import write_tiny_dataset


def test_fresh_binary_head_starts_with_small_logits():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 96, 96)
    raw = create_backbone(BackboneSpec("mobilenetv2_100", "random"), num_classes=1).eval()
    with torch.no_grad():
        before = raw(x).abs().max()
        after = init_binary_head(raw)(x).abs().max()
    assert after < 1.0
    assert after < before  # timm's fan-out init of a one-output head gives large logits


TRAIN_SCRIPT = """
import sys
from pathlib import Path
import numpy as np
from detector_pipeline.registry.artifacts import content_version
from detector_pipeline.models.backbones import BackboneSpec
from detector_pipeline.training.loop import train_detector
from detector_pipeline.training.settings import TrainSettings
files = sorted(Path(sys.argv[1]).glob("img/*.png"))
settings = TrainSettings(epochs=4, batch_size=8, lr=1e-3, weight_decay=0.05, pos_weight=2.0, crop_size=64)
y = np.arange(len(files)) % 4 == 0
result = train_detector(BackboneSpec("test_convnext", "random"), files, y.astype(float), files[:16], y[:16].astype(int),
                        settings, __import__("torch").device("cpu"), checkpoint_dir=Path(sys.argv[2]), log=lambda m: None)
print("resumed_from", result.resumed_from_epoch, "epochs", len(result.history))
print("version", content_version(result.state, {"history": result.history, "resumed_from_epoch": result.resumed_from_epoch}))
"""


def test_training_killed_mid_way_resumes_from_its_last_checkpoint(tmp_path):
    write_tiny_dataset(tmp_path / "data", n=64)
    checkpoints = tmp_path / "ckpt"
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    process = subprocess.Popen([sys.executable, str(script), str(tmp_path / "data"), str(checkpoints)])
    last = checkpoints / "last.json"
    deadline = time.time() + 180
    while not last.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.kill()  # SIGKILL: no cleanup, no atexit
    process.wait()
    assert last.exists(), "no checkpoint was written before the kill"
    killed_at = json.loads(last.read_text())["epoch"]
    assert killed_at < 3, "training finished before it could be killed"
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "data"), str(checkpoints)],
                          capture_output=True, text=True, check=True)
    assert f"resumed_from {killed_at} epochs 4" in done.stdout
    uninterrupted = subprocess.run([sys.executable, str(script), str(tmp_path / "data"), str(tmp_path / "ckpt2")],
                                   capture_output=True, text=True, check=True)
    assert "resumed_from None epochs 4" in uninterrupted.stdout
    # the same weights and training record, so the same model version, killed or not
    assert _line(done.stdout, "version") == _line(uninterrupted.stdout, "version")


def _line(stdout: str, prefix: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith(prefix + " "))
