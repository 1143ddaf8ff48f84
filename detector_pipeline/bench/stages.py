"""Throughput of the three heavy stages (embedding, training steps, scoring) on the current machine,
and the inference engines compared (bench/engines.py).

For each stage: model-only images/s on tensors already on the device (measured just before and just
after the end-to-end run), end-to-end images/s from image files through the project's own data path
(the same functions the assets call), their ratio (`efficiency`: 1.0 means the data path never keeps
the model waiting) and peak memory. Each stage runs in a fresh process so that its peak memory is its
own. Feed scoring is also timed with each engine, PyTorch and the ONNX export (export/onnx_export.py),
end to end on the same images. Plain torch: no Dagster, so the same command runs on a GPU machine that
has only torch, torchvision and timm (and onnxruntime for the ONNX engine; without it, it says so).
"""

import concurrent.futures
import dataclasses
import multiprocessing
import platform
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from detector_pipeline.bench import engines
from detector_pipeline.bench.decode import decode_stage
from detector_pipeline.config.device import autocast_dtype, pick_device, to_device
from detector_pipeline.config.profiles import Profile
from detector_pipeline.data.datasets import ImageFiles, make_loader
from detector_pipeline.errors import OperatorError
from detector_pipeline.export import onnx_export
from detector_pipeline.models import quantized
from detector_pipeline.models.backbones import (
    BackboneSpec,
    WeightsUnavailable,
    create_backbone,
    data_config,
)
from detector_pipeline.models.calibration import calibration_file
from detector_pipeline.models.embeddings import (
    add_to_cache,
    cache_file,
    embed_files,
    embed_with_cache,
    frozen_features,
    read_cache,
)
from detector_pipeline.tasks.scoring import score_to_parquet
from detector_pipeline.training.loop import init_binary_head, train_step
from detector_pipeline.training.saved import save_detector
from detector_pipeline.training.settings import TrainSettings

STAGES = ("embedding", "training", "scoring")


@dataclass(frozen=True)
class BenchPlan:
    profile: Profile
    paths: tuple[str, ...]  # the image files, in the order they are read
    device: str = "auto"
    model_only_batches: int = 10
    # CPU steps keep getting faster for several batches while the allocator settles (glibc raises its
    # mmap threshold as large blocks are freed): measuring earlier reads low (README: Performance).
    warmup_batches: int = 6
    # Scoring reads the sample this many times over: loading the model is a fixed cost that a real feed
    # of thousands of images amortizes; on 128 images it would dominate.
    scoring_repeats: int = 4
    # Training steps on a small CPU vary from one to the next: one epoch of the sample is too few
    # steps to compare with the model-only median.
    training_epochs: int = 4
    memory_images: int = 32  # memory check: the stage on this many images, then on memory_factor times as many
    memory_factor: int = 10
    engine_images: int = 32  # engines compared on this many images, calibrated on as many others
    # The probe's test ROC-AUC with each engine's embeddings needs every labelled image embedded twice
    # (eager fp32 and the profile's engine): minutes, so only when asked (make bench asks).
    probe_labels: Path | None = None
    probe_images_root: Path | None = None
    decode_photos: tuple[Path, ...] = ()  # large JPEG photographs for the decode stage (bench/decode.py)


def sample_images(labels_path: Path, images_root: Path, n: int, seed: int = 0) -> list[str]:
    """n image files of a labels table, a random mix of its families (whole table if shorter)."""
    table = pd.read_parquet(labels_path, columns=["image_path"])
    picked = table.sample(n=min(n, len(table)), random_state=seed)["image_path"]
    return [str(images_root / p) for p in picked]


def run_bench(plan: BenchPlan, log=print) -> dict:
    results = {"machine": _machine(plan.device), "profile": plan.profile.name, "n_images": len(plan.paths),
               "model_only_protocol": {"warmup_batches": plan.warmup_batches, "batches": plan.model_only_batches,
                                       "statistic": "median batch time; mean of the runs just before and just after end to end"},
               "stages": {}}
    for stage in STAGES:
        log(f"benchmarking {stage} on {len(plan.paths)} images")
        paths = plan.paths * plan.scoring_repeats if stage == "scoring" else plan.paths
        results["stages"][stage] = _in_fresh_process(_STAGE_FUNCTIONS[stage], plan, paths)
        log(f"  {_summary_line(stage, results['stages'][stage])}")
    log("scoring the feed with each engine: PyTorch and the ONNX export")
    figures = _in_fresh_process(_scoring_engines, plan, plan.paths * plan.scoring_repeats)
    results["stages"]["scoring"]["engines"] = figures = {e: figures[e] for e in ("torch", "onnx")}  # less peak RSS
    log("  " + ", ".join(f"{e} {f.get('img_s', 'unavailable')} img/s" for e, f in figures.items())
        + f", max |delta p| {figures['onnx'].get('max_abs_delta_p')}")
    log("benchmarking the incremental embedding (5 % new images)")
    results["incremental"] = _in_fresh_process(_incremental_embedding, plan, plan.paths)
    results["incremental_fraction"] = results["incremental"]["incremental_fraction"]
    results["memory_scaling"] = _memory_scaling(plan, log)
    log("comparing inference engines for the embedding backbone and the detector")
    results["engines"] = _in_fresh_process(_engines, plan)
    for role in ("embedding", "detector"):
        for name, figures in results["engines"][role]["candidates"].items():
            log(f"  {role} {name}: " + ", ".join(f"{k} {v}" for k, v in figures.items() if k != "description"))
    if plan.decode_photos:
        log(f"decode: native crops from {len(plan.decode_photos)} photographs, full decode against region decode")
        results["decode"] = _in_fresh_process(decode_stage, list(plan.decode_photos))
        for case, figures in results["decode"].items():
            if isinstance(figures, dict):
                rows = figures.get("restart_copy", {})
                log(f"  {case}: full decode + crop {figures['full_decode_crop_img_s']} img/s, lossless crop "
                    f"{figures['region_decode_img_s']} img/s (x{figures['speedup']}), restart-marker copy "
                    f"{rows.get('region_decode_img_s')} img/s (x{rows.get('speedup')}); pixels differing: "
                    f"{figures['pixels_differing']} and {rows.get('pixels_differing')} in {figures['crops_checked']} crops")
    if plan.probe_labels is not None:
        log(f"probe fidelity: embedding every image of {plan.probe_labels} with eager fp32 and {plan.profile.embedding.engine}")
        results["engines"]["probe_fidelity"] = _in_fresh_process(_probe_fidelity, plan)
    return results


def _summary_line(stage: str, r: dict) -> str:
    return (f"{stage}: model only {r['model_only_img_s']:.1f} img/s, end to end {r['end_to_end_img_s']:.1f} img/s, "
            f"efficiency {r['efficiency']:.2f}, peak RSS {r['peak_rss_mb']:.0f} MB")


def _memory_scaling(plan: BenchPlan, log) -> dict:
    """Embedding and scoring stream: on `memory_factor` times the images (the files repeated) they
    should need about the same peak memory."""
    out = {}
    few = plan.paths[: plan.memory_images]
    many = few * plan.memory_factor
    for stage in ("embedding", "scoring"):
        log(f"memory check: {stage} on {len(few)} and on {len(many)} images")
        small, big = (_in_fresh_process(_STAGE_FUNCTIONS[stage], plan, paths, model_only=False)["peak_rss_mb"]
                      for paths in (few, many))
        out[stage] = {"images": [len(few), len(many)], "peak_rss_mb": [small, big], "growth_mb": round(big - small, 1)}
    return out


def _in_fresh_process(fn, *args, **kwargs) -> dict:
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


def _timed(device: torch.device, fn) -> tuple[float, object]:
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
    seconds = [_timed(device, step)[0] for _ in range(plan.model_only_batches)]
    return batch_size / float(np.median(seconds))


def _model_input(batch_size: int, side: int, device: torch.device) -> torch.Tensor:
    """A batch as BatchNormalize hands it to the model: float, channels-last, on the device."""
    return torch.randn(batch_size, 3, side, side, device=device).contiguous(memory_format=torch.channels_last)


def _measure(plan: BenchPlan, device: torch.device, step, batch_size: int, end_to_end, images: int,
             model_only: bool = True) -> dict:
    """End-to-end images/s of `end_to_end()` over `images` images, and model-only images/s measured just
    before and just after it: their mean is the reference, so that a shared machine speeding up or
    slowing down during the stage moves both sides of `efficiency` alike."""
    before = _model_only(plan, device, step, batch_size) if model_only else None
    seconds, _ = _timed(device, end_to_end)
    after = _model_only(plan, device, step, batch_size) if model_only else None
    e2e = images / seconds
    if not model_only:
        return {"model_only_img_s": None, "end_to_end_img_s": round(e2e, 2), "efficiency": None}
    reference = (before + after) / 2
    return {"model_only_img_s": round(reference, 2), "model_only_before_after_img_s": [round(before, 2), round(after, 2)],
            "end_to_end_img_s": round(e2e, 2), "efficiency": round(e2e / reference, 3)}


def _backbone(spec: BackboneSpec, num_classes: int) -> tuple[torch.nn.Module, BackboneSpec]:
    """The profile's model with its pretrained weights if they can be had, else randomly initialised
    (the speed is the same); the spec returned says which, and so does the record."""
    try:
        return create_backbone(spec, num_classes), spec
    except WeightsUnavailable:
        random_spec = dataclasses.replace(spec, weights="random", file=None)
        return create_backbone(random_spec, num_classes), random_spec


def _engine_backbone(spec: BackboneSpec, paths) -> tuple[torch.nn.Module, BackboneSpec]:
    """The embedding backbone as the profile's engine runs it, int8 calibrated on (up to) 32 of `paths`."""
    model, spec = _backbone(spec, 0)
    if spec.engine == "int8":
        calibration = engines.model_inputs(model, list(paths[:32]))
        model = quantized.quantize_calibrated(model.eval(), calibration.split(8))
    return model, spec


def _embedding(plan: BenchPlan, paths, model_only: bool = True) -> dict:
    profile, device = plan.profile, pick_device(plan.device)
    model, spec = _engine_backbone(profile.embedding, paths)
    model = to_device(model, device).eval()
    dtype = autocast_dtype(device, profile.amp)
    size = data_config(model)["input_size"]
    x = torch.randn(profile.embed_batch_size, *size, device=device).contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def step():
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            return frozen_features(model, x, spec.feature_blocks)

    files = [Path(p) for p in paths]
    figures = _measure(plan, device, step, len(x), lambda: embed_files(model, files, profile.embed_batch_size, device,
                                                                        profile.num_workers, profile.amp,
                                                                        blocks=spec.feature_blocks),
                       len(files), model_only)
    return {**figures, "model": spec.describe(), "engine": spec.engine, "device": str(device),
            "dtype": str(dtype or torch.float32), "batch_size": profile.embed_batch_size, "image_size": list(size),
            "num_workers": profile.num_workers}


def _engines(plan: BenchPlan) -> dict:
    """Each candidate engine on the same images: the embedding backbone (fidelity: per-image cosine),
    the detector (fidelity: max |delta p|). CPU only: on a GPU the profile runs eager bf16."""
    n = plan.engine_images
    measured, calibration_paths = list(plan.paths[:n]), list(plan.paths[n:2 * n] or plan.paths[:n])
    out = {}
    for role, num_classes, candidates, fidelity, batch in (
            ("embedding", 0, engines.EMBEDDING_CANDIDATES, engines.embedding_fidelity, plan.profile.embed_batch_size),
            ("detector", 1, engines.DETECTOR_CANDIDATES, engines.detector_fidelity, plan.profile.infer_batch_size)):
        spec = plan.profile.embedding if role == "embedding" else plan.profile.detector
        model, spec = _backbone(spec, num_classes)
        inputs, calibration = (engines.detector_inputs(model, spec, _train_settings(plan.profile), measured, calibration_paths)
                               if num_classes else (engines.model_inputs(model, p) for p in (measured, calibration_paths)))
        model = _spread_head(model, calibration) if num_classes else model.eval()
        out[role] = {"model": spec.describe(), "images": len(inputs), "batch_size": batch, "threads": torch.get_num_threads(),
                     "candidates": engines.compare_engines(model, inputs, calibration, batch, candidates, fidelity,
                                                                log=lambda _: None)}
    out["embedding"]["default"] = plan.profile.embedding.engine
    out["detector"]["default"] = "eager_fp32"
    return out


@torch.inference_mode()
def _spread_head(model: torch.nn.Module, calibration: torch.Tensor) -> torch.nn.Module:
    """A seeded head scaled so that the logits spread over about one unit: a fresh detector's head
    starts near zero (p = 0.5 for every image), which would make any engine look exact."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = init_binary_head(model, std=1.0).eval()
    head = model.get_classifier()
    head.weight /= model(calibration).std().clamp(min=1e-6)
    return model


def _probe_fidelity(plan: BenchPlan) -> dict:
    """The probe's test ROC-AUC (95 % interval) with eager fp32 embeddings and with the profile's engine,
    every labelled image embedded through the pipeline's own cache functions (a temporary cache)."""
    from dataclasses import replace

    from detector_pipeline.tasks.labels import prepare_labels

    labels = prepare_labels(plan.probe_labels, plan.probe_images_root or plan.probe_labels.parent).accepted
    profile, device = plan.profile, pick_device(plan.device)
    images = labels[["file", "sha256"]]
    matrices, seconds = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp:
        for engine in dict.fromkeys(("eager", profile.embedding.engine)):
            spec = replace(profile.embedding, engine=engine)
            elapsed, embedded = _timed(device, lambda spec=spec: embed_with_cache(
                spec, images, Path(tmp), profile.embed_batch_size, device, profile.num_workers, profile.amp))
            table = embedded.table.set_index("sha256")["embedding"]
            matrices[engine], seconds[engine] = np.stack(table.loc[labels["sha256"]].to_numpy()), round(elapsed, 1)
    figures = engines.probe_fidelity(labels, matrices, profile.seed)
    eager, chosen = figures["eager"]["test_roc_auc"], figures[profile.embedding.engine]["test_roc_auc"]
    low, high = eager["ci95"] or (None, None)
    return {"engines": figures, "embedding_seconds": seconds, "images": len(labels),
            "within_eager_interval": low is not None and low <= chosen["value"] <= high}


def _train_settings(profile: Profile) -> TrainSettings:
    """The profile's training (its changes included: several crops cost more per image), one epoch."""
    return dataclasses.replace(TrainSettings.from_profile(profile, pos_weight=7.0), epochs=1)


def _training(plan: BenchPlan, paths, model_only: bool = True) -> dict:
    profile, device = plan.profile, pick_device(plan.device)
    settings = _train_settings(profile)
    model, spec = _backbone(profile.detector, 1)
    model = to_device(init_binary_head(model), device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    criterion = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(settings.pos_weight, device=device))
    dtype = autocast_dtype(device, settings.amp)
    x = _model_input(settings.batch_size, settings.crop_size, device)
    y = torch.rand(settings.batch_size, device=device)

    scores = np.random.default_rng(0).random(len(paths))
    preprocessing = settings.preprocessing(spec.architecture)
    loader = make_loader(ImageFiles([Path(p) for p in paths], scores, preprocessing.transform(train=True),
                                    preprocessing.decoder(train=True)),
                         settings.batch_size, settings.num_workers, device, shuffle=True)
    normalize = preprocessing.normalizer(device)

    def epochs():
        for _ in range(plan.training_epochs):
            for xb, yb in loader:
                train_step(model, optimizer, criterion, normalize(xb), yb.to(device, non_blocking=True), dtype)

    images = len(paths) * plan.training_epochs
    figures = _measure(plan, device, lambda: train_step(model, optimizer, criterion, x, y, dtype), settings.batch_size,
                       epochs, images, model_only)
    return {**figures, "model": spec.describe(), "device": str(device), "dtype": str(dtype or torch.float32),
            "batch_size": settings.batch_size, "image_size": [3, settings.crop_size, settings.crop_size],
            "num_workers": settings.num_workers, "images": images}


def _saved_detector(profile: Profile, model: torch.nn.Module, spec: BackboneSpec, root: Path) -> Path:
    """The model saved as training saves a detector, so that scoring loads it the way the feed does."""
    return save_detector(root, model.state_dict(), spec, _train_settings(profile), labels_version="bench")[1]


def _scoring(plan: BenchPlan, paths, model_only: bool = True) -> dict:
    profile, device = plan.profile, pick_device(plan.device)
    settings = _train_settings(profile)
    model, spec = _backbone(profile.detector, 1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = _saved_detector(profile, init_binary_head(model), spec, Path(tmp))
        model = to_device(model, device).eval()
        x = _model_input(plan.profile.infer_batch_size, settings.crop_size, device)

        @torch.inference_mode()
        def step():
            return torch.sigmoid(model(x))

        figures = _measure(plan, device, step, len(x),
                           lambda: score_to_parquet(folder, 0.5, list(paths), Path(tmp) / "scores.parquet",
                                                    profile.infer_batch_size, str(device), log=lambda _: None,
                                                    num_workers=profile.num_workers),
                           len(paths), model_only)
    return {**figures, "model": spec.describe(), "device": str(device), "dtype": "torch.float32", "images": len(paths),
            "batch_size": profile.infer_batch_size, "image_size": [3, settings.crop_size, settings.crop_size],
            "num_workers": profile.num_workers}


def _scoring_engines(plan: BenchPlan, paths, rounds: int = 2) -> dict:
    """Feed scoring end to end (score_to_parquet) with each engine on the same images: PyTorch on the
    plan's device and the version's ONNX export in ONNX Runtime on the CPU, with the largest |delta
    P(AI)| between their parquets. The head is spread (_spread_head) so that the delta means something.
    Rounds alternate the engines, so a shared machine's drift and the first read of the files fall on
    both; img/s is the best round's. On a GPU the PyTorch side runs the profile's autocast: the delta
    then includes bf16's."""
    profile, device = plan.profile, pick_device(plan.device)
    model, spec = _backbone(profile.detector, 1)
    model = _spread_head(model, engines.detector_inputs(model, spec, _train_settings(profile), list(paths[:8]))[0])
    out: dict = {"torch": {"device": str(device)}, "onnx": {"device": "cpu"}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = _saved_detector(profile, model, spec, Path(tmp))
        try:
            export = onnx_export.export_onnx(folder, onnx_export.export_dir_for(folder),
                                             list(paths[:plan.engine_images]))
        except OperatorError as exc:  # no onnxruntime here: a finding, not a crash
            return {"torch": out["torch"], "onnx": {"error": f"{type(exc).__name__}: {exc}"[:300]}}
        seconds: dict[str, list[float]] = {"torch": [], "onnx": []}
        for _ in range(rounds):
            for engine in seconds:
                seconds[engine].append(_timed(device, lambda engine=engine: score_to_parquet(
                    folder, 0.5, list(paths), Path(tmp) / f"{engine}.parquet", profile.infer_batch_size, str(device),
                    log=lambda _: None, num_workers=profile.num_workers, engine=engine))[0])
        torch_p, onnx_p = (pd.read_parquet(Path(tmp) / f"{e}.parquet")["p_ai"].to_numpy(np.float64) for e in seconds)
    for engine, times in seconds.items():
        out[engine].update(img_s=round(len(paths) / min(times), 2), images=len(paths), rounds=rounds)
    out["onnx"].update(max_abs_delta_p=float(np.nanmax(np.abs(onnx_p - torch_p))), parity=export["max_abs_delta_p"],
                       parity_images=export["n_parity_images"])
    return out


def _incremental_embedding(plan: BenchPlan, paths) -> dict:
    """A full embedding run into an empty cache, then a retrain's run after 5 % new images: the cache
    holds the other 95 % (copied from the full run), only the new ones are embedded."""
    profile, device = plan.profile, pick_device(plan.device)
    images = pd.DataFrame({"file": list(paths), "sha256": [f"bench-{i:08d}" for i in range(len(paths))]})
    n_new = max(1, round(0.05 * len(images)))
    spec = _backbone(profile.embedding, 0)[1]

    def embed(cache_dir: Path):
        return _timed(device, lambda: embed_with_cache(spec, images, cache_dir, profile.embed_batch_size, device,
                                                       profile.num_workers, profile.amp))

    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        full, _ = embed(Path(tmp) / "full")
        cached = read_cache(cache_file(spec, Path(tmp) / "full")).iloc[: len(images) - n_new]
        calibration = calibration_file(spec, Path(tmp) / "full")
        if calibration.exists():  # the int8 engine's cache belongs to its calibration: both go along
            (Path(tmp) / "incremental").mkdir()
            shutil.copy(calibration, Path(tmp) / "incremental" / calibration.name)
        add_to_cache(spec, Path(tmp) / "incremental", cached["sha256"], np.stack(cached["embedding"].to_numpy()))
        incremental, result = embed(Path(tmp) / "incremental")
    return {"images": len(images), "new_images": n_new, "computed": result.computed,
            "full_seconds": round(full, 2), "incremental_seconds": round(incremental, 2),
            "incremental_fraction": round(incremental / full, 3)}


def _machine(device: str) -> dict:
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


_STAGE_FUNCTIONS = {"embedding": _embedding, "training": _training, "scoring": _scoring}
