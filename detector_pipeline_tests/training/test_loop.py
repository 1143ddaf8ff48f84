import json
import subprocess
import sys
import time

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from detector_pipeline.models.backbones import BackboneSpec, create_backbone
from detector_pipeline.training.loop import init_binary_head, learning_rate_factor, param_groups, set_learning_rate
from detector_pipeline.training.settings import TrainSettings
from detector_pipeline_tests.helpers import write_tiny_dataset


# no subnormals: an earlier test in the process may have turned on flush-to-zero (config.device.to_device)
@given(total=st.integers(2, 500), warmup_share=st.floats(0, 0.5, allow_subnormal=False))
def test_cosine_schedule_warms_up_then_decays_to_a_hundredth(total, warmup_share):
    warmup = int(warmup_share * total)
    factors = [learning_rate_factor(step, total, warmup, "cosine") for step in range(total)]
    assert all(0 < f <= 1 for f in factors)
    assert factors[warmup:] == sorted(factors[warmup:], reverse=True)  # never rises after the warm-up
    assert factors[:warmup] == sorted(factors[:warmup])
    if warmup:
        assert factors[warmup - 1] == 1.0
    assert learning_rate_factor(total, total, warmup, "cosine") == pytest.approx(0.01)
    assert learning_rate_factor(total // 2, total, warmup, "constant") == 1.0


def test_the_new_head_learns_at_its_own_multiple_of_the_rate():
    model = init_binary_head(create_backbone(BackboneSpec("test_convnext", "random"), num_classes=1))
    settings = TrainSettings(epochs=2, batch_size=8, lr=1e-3, weight_decay=0.05, pos_weight=None, head_lr_scale=10.0)
    optimizer = torch.optim.AdamW(param_groups(model, settings.head_lr_scale), lr=settings.lr)
    set_learning_rate(optimizer, settings, step=3, steps_per_epoch=10)
    body, head = optimizer.param_groups
    assert {id(p) for p in head["params"]} == {id(p) for p in model.get_classifier().parameters()}
    assert len(body["params"]) + len(head["params"]) == len(list(model.parameters()))
    assert body["lr"] == pytest.approx(1e-3) and head["lr"] == pytest.approx(1e-2)


def test_settings_refuse_an_unknown_schedule_or_epoch_rule():
    with pytest.raises(ValueError, match="schedule"):
        TrainSettings(epochs=1, batch_size=8, lr=1e-3, weight_decay=0.0, pos_weight=None, schedule="step")
    with pytest.raises(ValueError, match="keep"):
        TrainSettings(epochs=1, batch_size=8, lr=1e-3, weight_decay=0.0, pos_weight=None, keep="best_test")


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
# every training change on: the schedule, several crops, the head's rate, the moving average and the
# augmentation all have to resume to the very weights of an uninterrupted run
settings = TrainSettings(epochs=4, batch_size=8, lr=1e-3, weight_decay=0.05, pos_weight=2.0, crop_size=64,
                         schedule="cosine", warmup_epochs=0.5, crops_per_image=2, head_lr_scale=10.0,
                         ema_decay=0.9, augment=True, keep="last")
y = np.arange(len(files)) % 4 == 0
result = train_detector(BackboneSpec("test_convnext", "random"), files, y.astype(float), files[:16], y[:16].astype(int),
                        settings, __import__("torch").device("cpu"), checkpoint_dir=Path(sys.argv[2]), log=lambda m: None)
print("resumed_from", result.resumed_from_epoch, "epochs", len(result.history))
print("kept epoch", result.best_epoch)
print("version", content_version(result.state, {"history": result.history, "resumed_from_epoch": result.resumed_from_epoch}))
"""


@pytest.mark.slow  # three training processes of 4 epochs each
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
    assert "kept epoch 3" in uninterrupted.stdout  # keep="last"
    # the same weights and training record, so the same model version, killed or not
    assert _line(done.stdout, "version") == _line(uninterrupted.stdout, "version")


def _line(stdout: str, prefix: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith(prefix + " "))
