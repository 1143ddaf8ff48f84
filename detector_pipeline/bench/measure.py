"""How the bench measures: a stage in a fresh process (its own peak memory), timed calls that wait
for the device, model-only against end-to-end images/s, the machine's facts, and the models under
test (pretrained where the weights can be had, else randomly initialised: the speed is the same)."""

import concurrent.futures
import dataclasses
import multiprocessing
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch

from detector_pipeline.bench import engines
from detector_pipeline.bench.plan import BenchPlan
from detector_pipeline.config.device import pick_device
from detector_pipeline.config.profiles import Profile
from detector_pipeline.models import quantized
from detector_pipeline.models.backbones import (
    BackboneSpec,
    WeightsUnavailable,
    create_backbone,
)
from detector_pipeline.training.loop import init_binary_head
from detector_pipeline.training.saved import save_detector
from detector_pipeline.training.settings import TrainSettings


def in_fresh_process(fn, *args, **kwargs) -> dict:
    """Runs fn in a spawned process, so peak RSS is that stage's alone."""
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_with_peak_rss, fn, *args, **kwargs).result()


def _with_peak_rss(fn, *args, **kwargs) -> dict:
    result = fn(*args, **kwargs)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB
    if torch.cuda.is_available():
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(device: torch.device, fn) -> tuple[float, object]:
    """(seconds, fn's result), waiting for the device to finish."""
    _sync(device)
    started = time.perf_counter()
    result = fn()
    _sync(device)
    return time.perf_counter() - started, result


def _model_only(plan: BenchPlan, device: torch.device, step, batch_size: int) -> float:
    """images/s of `step()` (one batch already on the device) after the plan's warm-up batches; the
    median batch, so that a neighbour's burst on a shared machine does not move it."""
    for _ in range(plan.warmup_batches):
        step()
    seconds = [timed(device, step)[0] for _ in range(plan.model_only_batches)]
    return batch_size / float(np.median(seconds))


def model_input(batch_size: int, side: int, device: torch.device) -> torch.Tensor:
    """A batch as BatchNormalize hands it to the model: float, channels-last, on the device."""
    return torch.randn(batch_size, 3, side, side, device=device).contiguous(memory_format=torch.channels_last)


def measure(plan: BenchPlan, device: torch.device, step, batch_size: int, end_to_end, images: int,
             model_only: bool = True) -> dict:
    """End-to-end images/s of `end_to_end()` over `images` images, and model-only images/s measured just
    before and just after it: their mean is the reference, so that a shared machine speeding up or
    slowing down during the stage moves both sides of `efficiency` alike."""
    before = _model_only(plan, device, step, batch_size) if model_only else None
    seconds, _ = timed(device, end_to_end)
    after = _model_only(plan, device, step, batch_size) if model_only else None
    e2e = images / seconds
    if not model_only:
        return {"model_only_img_s": None, "end_to_end_img_s": round(e2e, 2), "efficiency": None}
    reference = (before + after) / 2
    return {"model_only_img_s": round(reference, 2), "model_only_before_after_img_s": [round(before, 2), round(after, 2)],
            "end_to_end_img_s": round(e2e, 2), "efficiency": round(e2e / reference, 3)}


def backbone(spec: BackboneSpec, num_classes: int) -> tuple[torch.nn.Module, BackboneSpec]:
    """The profile's model with its pretrained weights if they can be had, else randomly initialised
    (the speed is the same); the spec returned says which, and so does the record."""
    try:
        return create_backbone(spec, num_classes), spec
    except WeightsUnavailable:
        random_spec = dataclasses.replace(spec, weights="random", file=None)
        return create_backbone(random_spec, num_classes), random_spec


def engine_backbone(spec: BackboneSpec, paths) -> tuple[torch.nn.Module, BackboneSpec]:
    """The embedding backbone as the profile's engine runs it, int8 calibrated on (up to) 32 of `paths`."""
    model, spec = backbone(spec, 0)
    if spec.engine == "int8":
        calibration = engines.model_inputs(model, list(paths[:32]))
        model = quantized.quantize_calibrated(model.eval(), calibration.split(8))
    return model, spec


def train_settings(profile: Profile) -> TrainSettings:
    """The profile's training (its changes included: several crops cost more per image), one epoch."""
    return dataclasses.replace(TrainSettings.from_profile(profile, pos_weight=7.0), epochs=1)


def saved_detector(profile: Profile, model: torch.nn.Module, spec: BackboneSpec, root: Path) -> Path:
    """The model saved as training saves a detector, so that scoring loads it the way the feed does."""
    return save_detector(root, model.state_dict(), spec, train_settings(profile), labels_version="bench")[1]


@torch.inference_mode()
def spread_head(model: torch.nn.Module, calibration: torch.Tensor) -> torch.nn.Module:
    """A seeded head scaled so that the logits spread over about one unit: a fresh detector's head
    starts near zero (p = 0.5 for every image), which would make any engine look exact."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = init_binary_head(model, std=1.0).eval()
    head = model.get_classifier()
    head.weight /= model(calibration).std().clamp(min=1e-6)
    return model


def machine(device: str) -> dict:
    dev = pick_device(device)
    facts = {"device": str(dev), "cpu": _cpu_name(),
             "cpu_count": multiprocessing.cpu_count(), "torch": torch.__version__,
             "torch_threads": torch.get_num_threads()}
    if dev.type == "cuda":
        facts["gpu"] = torch.cuda.get_device_name(dev)
    return facts


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
