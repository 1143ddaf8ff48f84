"""The inference engines compared inside the bench: each candidate's speed and fidelity for the
embedding backbone and the detector (bench/engines.py), and the probe's test ROC-AUC with each
engine's embeddings."""

import tempfile
from pathlib import Path

import numpy as np
import torch

from detector_pipeline.bench import engines
from detector_pipeline.bench.measure import backbone, spread_head, timed, train_settings
from detector_pipeline.bench.plan import BenchPlan
from detector_pipeline.config.device import pick_device
from detector_pipeline.models.embeddings import embed_with_cache


def compare_engines_stage(plan: BenchPlan) -> dict:
    """Each candidate engine on the same images: the embedding backbone (fidelity: per-image cosine),
    the detector (fidelity: max |delta p|). CPU only: on a GPU the profile runs eager bf16."""
    n = plan.engine_images
    measured, calibration_paths = list(plan.paths[:n]), list(plan.paths[n:2 * n] or plan.paths[:n])
    out = {}
    for role, num_classes, candidates, fidelity, batch in (
            ("embedding", 0, engines.EMBEDDING_CANDIDATES, engines.embedding_fidelity, plan.profile.embed_batch_size),
            ("detector", 1, engines.DETECTOR_CANDIDATES, engines.detector_fidelity, plan.profile.infer_batch_size)):
        spec = plan.profile.embedding if role == "embedding" else plan.profile.detector
        model, spec = backbone(spec, num_classes)
        inputs, calibration = (engines.detector_inputs(model, spec, train_settings(plan.profile), measured, calibration_paths)
                               if num_classes else (engines.model_inputs(model, p) for p in (measured, calibration_paths)))
        model = spread_head(model, calibration) if num_classes else model.eval()
        out[role] = {"model": spec.describe(), "images": len(inputs), "batch_size": batch, "threads": torch.get_num_threads(),
                     "candidates": engines.compare_engines(model, inputs, calibration, batch, candidates, fidelity,
                                                                log=lambda _: None)}
    out["embedding"]["default"] = plan.profile.embedding.engine
    out["detector"]["default"] = "eager_fp32"
    return out


def probe_fidelity_stage(plan: BenchPlan) -> dict:
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
            elapsed, embedded = timed(device, lambda spec=spec: embed_with_cache(
                spec, images, Path(tmp), profile.embed_batch_size, device, profile.num_workers, profile.amp))
            table = embedded.table.set_index("sha256")["embedding"]
            matrices[engine], seconds[engine] = np.stack(table.loc[labels["sha256"]].to_numpy()), round(elapsed, 1)
    figures = engines.probe_fidelity(labels, matrices, profile.seed)
    eager, chosen = figures["eager"]["test_roc_auc"], figures[profile.embedding.engine]["test_roc_auc"]
    low, high = eager["ci95"] or (None, None)
    return {"engines": figures, "embedding_seconds": seconds, "images": len(labels),
            "within_eager_interval": low is not None and low <= chosen["value"] <= high}
