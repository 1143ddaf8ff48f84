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

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from detector_pipeline.bench import engines
from detector_pipeline.bench.cache_growth import cache_growth
from detector_pipeline.bench.comparisons import (
    compare_engines_stage,
    probe_fidelity_stage,
)
from detector_pipeline.bench.decode import decode_stage
from detector_pipeline.bench.measure import (
    backbone,
    engine_backbone,
    in_fresh_process,
    machine,
    measure,
    model_input,
    saved_detector,
    spread_head,
    timed,
    train_settings,
)
from detector_pipeline.bench.plan import STAGES, BenchPlan, sample_images
from detector_pipeline.config.device import autocast_dtype, pick_device, to_device
from detector_pipeline.data.datasets import ImageFiles, make_loader
from detector_pipeline.errors import OperatorError
from detector_pipeline.export import onnx_export
from detector_pipeline.models.backbones import data_config
from detector_pipeline.models.calibration import calibration_file
from detector_pipeline.models.embeddings import (
    add_to_cache,
    cache_of,
    embed_files,
    embed_with_cache,
    frozen_features,
)
from detector_pipeline.tasks.scoring import score_to_parquet
from detector_pipeline.training.loop import init_binary_head, train_step

__all__ = ["STAGES", "BenchPlan", "run_bench", "sample_images"]


def run_bench(plan: BenchPlan, log=print) -> dict:
    results = {"machine": machine(plan.device), "profile": plan.profile.name, "n_images": len(plan.paths),
               "model_only_protocol": {"warmup_batches": plan.warmup_batches, "batches": plan.model_only_batches,
                                       "statistic": "median batch time; mean of the runs just before and just after end to end"},
               "stages": {}}
    for stage in STAGES:
        log(f"benchmarking {stage} on {len(plan.paths)} images")
        paths = plan.paths * plan.scoring_repeats if stage == "scoring" else plan.paths
        results["stages"][stage] = in_fresh_process(_STAGE_FUNCTIONS[stage], plan, paths)
        log(f"  {_summary_line(stage, results['stages'][stage])}")
    log("scoring the feed with each engine: PyTorch and the ONNX export")
    figures = in_fresh_process(_scoring_engines, plan, plan.paths * plan.scoring_repeats)
    results["stages"]["scoring"]["engines"] = figures = {e: figures[e] for e in ("torch", "onnx")}  # less peak RSS
    log("  " + ", ".join(f"{e} {f.get('img_s', 'unavailable')} img/s" for e, f in figures.items())
        + f", max |delta p| {figures['onnx'].get('max_abs_delta_p')}")
    log("benchmarking the incremental embedding (5 % new images)")
    results["incremental"] = in_fresh_process(_incremental_embedding, plan, plan.paths)
    results["incremental_fraction"] = results["incremental"]["incremental_fraction"]
    results["memory_scaling"] = _memory_scaling(plan, log)
    log("comparing inference engines for the embedding backbone and the detector")
    results["engines"] = in_fresh_process(compare_engines_stage, plan)
    for role in ("embedding", "detector"):
        for name, figures in results["engines"][role]["candidates"].items():
            log(f"  {role} {name}: " + ", ".join(f"{k} {v}" for k, v in figures.items() if k != "description"))
    if plan.decode_photos:
        log(f"decode: native crops from {len(plan.decode_photos)} photographs, full decode against region decode")
        results["decode"] = in_fresh_process(decode_stage, list(plan.decode_photos))
        for case, figures in results["decode"].items():
            if isinstance(figures, dict):
                rows = figures.get("restart_copy", {})
                log(f"  {case}: full decode + crop {figures['full_decode_crop_img_s']} img/s, lossless crop "
                    f"{figures['region_decode_img_s']} img/s (x{figures['speedup']}), restart-marker copy "
                    f"{rows.get('region_decode_img_s')} img/s (x{rows.get('speedup')}); pixels differing: "
                    f"{figures['pixels_differing']} and {rows.get('pixels_differing')} in {figures['crops_checked']} crops")
    if plan.cache_sizes:
        log("adding 100 images to content-hash caches of growing size")
        results["cache_growth"] = cache_growth(plan.cache_sizes, log)
    if plan.probe_labels is not None:
        log(f"probe fidelity: embedding every image of {plan.probe_labels} with eager fp32 and {plan.profile.embedding.engine}")
        results["engines"]["probe_fidelity"] = in_fresh_process(probe_fidelity_stage, plan)
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
        small, big = (in_fresh_process(_STAGE_FUNCTIONS[stage], plan, paths, model_only=False)["peak_rss_mb"]
                      for paths in (few, many))
        out[stage] = {"images": [len(few), len(many)], "peak_rss_mb": [small, big], "growth_mb": round(big - small, 1)}
    return out


def _embedding(plan: BenchPlan, paths, model_only: bool = True) -> dict:
    profile, device = plan.profile, pick_device(plan.device)
    model, spec = engine_backbone(profile.embedding, paths)
    model = to_device(model, device).eval()
    dtype = autocast_dtype(device, profile.amp)
    size = data_config(model)["input_size"]
    x = torch.randn(profile.embed_batch_size, *size, device=device).contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def step():
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            return frozen_features(model, x, spec.feature_blocks)

    files = [Path(p) for p in paths]
    figures = measure(plan, device, step, len(x), lambda: embed_files(model, files, profile.embed_batch_size, device,
                                                                        profile.num_workers, profile.amp,
                                                                        blocks=spec.feature_blocks),
                       len(files), model_only)
    return {**figures, "model": spec.describe(), "engine": spec.engine, "device": str(device),
            "dtype": str(dtype or torch.float32), "batch_size": profile.embed_batch_size, "image_size": list(size),
            "num_workers": profile.num_workers}


def _training(plan: BenchPlan, paths, model_only: bool = True) -> dict:
    profile, device = plan.profile, pick_device(plan.device)
    settings = train_settings(profile)
    model, spec = backbone(profile.detector, 1)
    model = to_device(init_binary_head(model), device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    criterion = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(settings.pos_weight, device=device))
    dtype = autocast_dtype(device, settings.amp)
    x = model_input(settings.batch_size, settings.crop_size, device)
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
    figures = measure(plan, device, lambda: train_step(model, optimizer, criterion, x, y, dtype), settings.batch_size,
                       epochs, images, model_only)
    return {**figures, "model": spec.describe(), "device": str(device), "dtype": str(dtype or torch.float32),
            "batch_size": settings.batch_size, "image_size": [3, settings.crop_size, settings.crop_size],
            "num_workers": settings.num_workers, "images": images}


def _scoring(plan: BenchPlan, paths, model_only: bool = True) -> dict:
    profile, device = plan.profile, pick_device(plan.device)
    settings = train_settings(profile)
    model, spec = backbone(profile.detector, 1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = saved_detector(profile, init_binary_head(model), spec, Path(tmp))
        model = to_device(model, device).eval()
        x = model_input(plan.profile.infer_batch_size, settings.crop_size, device)

        @torch.inference_mode()
        def step():
            return torch.sigmoid(model(x))

        figures = measure(plan, device, step, len(x),
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
    P(AI)| between their parquets. The head is spread (spread_head) so that the delta means something.
    Rounds alternate the engines, so a shared machine's drift and the first read of the files fall on
    both; img/s is the best round's. On a GPU the PyTorch side runs the profile's autocast: the delta
    then includes bf16's."""
    profile, device = plan.profile, pick_device(plan.device)
    model, spec = backbone(profile.detector, 1)
    model = spread_head(model, engines.detector_inputs(model, spec, train_settings(profile), list(paths[:8]))[0])
    out: dict = {"torch": {"device": str(device)}, "onnx": {"device": "cpu"}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = saved_detector(profile, model, spec, Path(tmp))
        try:
            export = onnx_export.export_onnx(folder, onnx_export.export_dir_for(folder),
                                             list(paths[:plan.engine_images]))
        except OperatorError as exc:  # no onnxruntime here: a finding, not a crash
            return {"torch": out["torch"], "onnx": {"error": f"{type(exc).__name__}: {exc}"[:300]}}
        seconds: dict[str, list[float]] = {"torch": [], "onnx": []}
        for _ in range(rounds):
            for engine in seconds:
                seconds[engine].append(timed(device, lambda engine=engine: score_to_parquet(
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
    spec = backbone(profile.embedding, 0)[1]

    def embed(cache_dir: Path):
        return timed(device, lambda: embed_with_cache(spec, images, cache_dir, profile.embed_batch_size, device,
                                                       profile.num_workers, profile.amp))

    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        full, _ = embed(Path(tmp) / "full")
        kept = list(images["sha256"][: len(images) - n_new])
        cached = cache_of(spec, Path(tmp) / "full").get(kept)
        calibration = calibration_file(spec, Path(tmp) / "full")
        if calibration.exists():  # the int8 engine's cache belongs to its calibration: both go along
            (Path(tmp) / "incremental").mkdir()
            shutil.copy(calibration, Path(tmp) / "incremental" / calibration.name)
        add_to_cache(spec, Path(tmp) / "incremental", kept, cached)
        incremental, result = embed(Path(tmp) / "incremental")
    return {"images": len(images), "new_images": n_new, "computed": result.computed,
            "full_seconds": round(full, 2), "incremental_seconds": round(incremental, 2),
            "incremental_fraction": round(incremental / full, 3)}


_STAGE_FUNCTIONS = {"embedding": _embedding, "training": _training, "scoring": _scoring}
