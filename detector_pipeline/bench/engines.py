"""Ways of running a frozen network for inference on this machine, side by side: images/s and how
faithful each stays to eager fp32 (per-image cosine of embeddings, max |delta p| of detector scores).
The profile's engine is then checked end to end: the probe's test ROC-AUC with its embeddings against
the probe's with eager fp32 embeddings, and the interval of the latter."""

import copy
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import timm
import torch

from detector_pipeline.data.images import open_rgb
from detector_pipeline.export import onnx_export
from detector_pipeline.models import quantized
from detector_pipeline.models.backbones import BackboneSpec, data_config
from detector_pipeline.models.scorer import DetectorScorer
from detector_pipeline.training.saved import save_detector
from detector_pipeline.training.settings import TrainSettings

Runner = Callable[[torch.Tensor], np.ndarray]


@dataclass(frozen=True)
class Candidate:
    name: str
    description: str
    build: Callable[[torch.nn.Module, torch.Tensor, Path], Runner]  # (eager model, calibration batch, work dir)


def _eager(model, _calibration, _work) -> Runner:
    return lambda x: model(x).float().numpy()


def _compiled(model, calibration, _work) -> Runner:
    compiled = torch.compile(model)
    compiled(calibration[:2])  # compiles now, so that setup_seconds holds it
    return lambda x: compiled(x).float().numpy()


def _exported(model: torch.nn.Module, example: torch.Tensor, work: Path) -> Path:
    path = work / "model.onnx"
    path.write_bytes(onnx_export.onnx_bytes(model, example, "x", "y"))
    return path


def _ort_session(path: Path):
    session = onnx_export.ort_session(path)
    return lambda x: session.run(None, {"x": x.numpy()})[0]


def _onnxruntime_fp32(model, calibration, work) -> Runner:
    return _ort_session(_exported(model, calibration, work))


def _onnxruntime_dynamic_int8(model, calibration, work) -> Runner:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = work / "model.int8.onnx"
    quantize_dynamic(str(_exported(model, calibration, work)), str(target), weight_type=QuantType.QInt8, per_channel=True)
    return _ort_session(target)


def _int8_model(model, calibration) -> torch.nn.Module:
    return quantized.quantize_calibrated(copy.deepcopy(model), calibration.split(8))


def _int8(model, calibration, _work) -> Runner:
    int8 = _int8_model(model, calibration)
    return lambda x: int8(x).float().numpy()


def _int8_compiled(model, calibration, work) -> Runner:
    return _compiled(_int8_model(model, calibration), calibration, work)


EMBEDDING_CANDIDATES = (
    Candidate("eager_fp32", "PyTorch eager, fp32 (the reference)", _eager),
    Candidate("torch_compile_fp32", "torch.compile (inductor), fp32", _compiled),
    Candidate("onnxruntime_fp32", "ONNX Runtime, fp32", _onnxruntime_fp32),
    Candidate("onnxruntime_dynamic_int8", "ONNX Runtime dynamic int8: per-channel weights, per-tensor activations",
              _onnxruntime_dynamic_int8),
    Candidate("int8", "the project's int8 engine: SmoothQuant + per-token activations, int32 products (eager)", _int8),
    Candidate("int8_compiled", "the project's int8 engine under torch.compile", _int8_compiled),
)
DETECTOR_CANDIDATES = EMBEDDING_CANDIDATES[:3]


def model_inputs(model: torch.nn.Module, paths: list[str]) -> torch.Tensor:
    """The images as the embedding backbone sees them: its eval transform (timm's data config), as
    models/embeddings.embed_files makes them."""
    transform = timm.data.create_transform(**data_config(model), is_training=False)
    return torch.stack([transform(open_rgb(Path(p))) for p in paths])


def detector_inputs(model: torch.nn.Module, spec: BackboneSpec, settings: TrainSettings,
                    *path_lists: list[str]) -> list[torch.Tensor]:
    """The images as the detector sees them, one batch per list: the model saved as training saves it,
    and its scorer (models/scorer.py) loaded back, so the preprocessing is the one saved with it."""
    with tempfile.TemporaryDirectory(prefix="bench-detector-") as tmp:
        _, folder, _ = save_detector(Path(tmp), model.state_dict(), spec, settings, labels_version="bench")
        scorer = DetectorScorer.load(folder, "torch", torch.device("cpu"))
        return [scorer.model_inputs(paths) for paths in path_lists]


def compare_engines(model: torch.nn.Module, inputs: torch.Tensor, calibration: torch.Tensor, batch_size: int,
                    candidates: tuple[Candidate, ...], fidelity: Callable[[np.ndarray, np.ndarray], dict],
                    rounds: int = 8, warmup_rounds: int = 2, log=print) -> dict:
    """{candidate: img/s, speed-up over the first candidate, fidelity to the first candidate's outputs,
    set-up seconds}; a candidate that fails to build says why.

    Timing is interleaved: each round times one batch of every candidate in turn, so a shared machine
    that slows down or speeds up moves them all alike; img/s is the median over rounds, the speed-up
    the median of the per-round ratios to the first candidate."""
    model = model.eval()
    results, runners, reference = {}, {}, None
    with torch.inference_mode():
        for candidate in candidates:
            try:
                with tempfile.TemporaryDirectory(prefix="engine-") as work:
                    started = time.perf_counter()
                    run = candidate.build(model, calibration, Path(work))
                    setup = time.perf_counter() - started
                outputs = np.concatenate([run(batch) for batch in inputs.split(batch_size)])
            except Exception as exc:  # noqa: BLE001 (an engine missing on this machine is a finding, not a crash)
                results[candidate.name] = {"description": candidate.description, "error": f"{type(exc).__name__}: {exc}"[:300]}
                log(f"  {candidate.name}: unavailable ({type(exc).__name__})")
                continue
            reference = outputs if reference is None else reference
            runners[candidate.name] = run
            results[candidate.name] = {"description": candidate.description, "setup_seconds": round(setup, 1),
                                       **fidelity(outputs, reference)}
        seconds = _interleaved_batch_seconds(runners, inputs[:batch_size], rounds, warmup_rounds)
    first = next(iter(seconds), None)
    for name, times in seconds.items():
        results[name]["img_s"] = round(batch_size / float(np.median(times)), 2)
        results[name]["speedup"] = round(float(np.median(np.asarray(seconds[first]) / np.asarray(times))), 2)
        results[name]["rounds"] = rounds
        log(f"  {name}: {results[name]['img_s']} img/s, x{results[name]['speedup']}")
    return results


def _interleaved_batch_seconds(runners: dict[str, Runner], batch: torch.Tensor, rounds: int,
                               warmup_rounds: int) -> dict[str, list[float]]:
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    for round_index in range(warmup_rounds + rounds):
        for name, run in runners.items():
            started = time.perf_counter()
            run(batch)
            if round_index >= warmup_rounds:
                seconds[name].append(time.perf_counter() - started)
    return seconds


def embedding_fidelity(outputs: np.ndarray, reference: np.ndarray) -> dict:
    """Per-image cosine to the reference embeddings; faithful when every image is at >= 0.99."""
    cosine = (outputs * reference).sum(1) / (np.linalg.norm(outputs, axis=1) * np.linalg.norm(reference, axis=1))
    return {"cosine_min": round(float(cosine.min()), 4), "cosine_mean": round(float(cosine.mean()), 4),
            "faithful": bool(cosine.min() >= 0.99)}


def detector_fidelity(outputs: np.ndarray, reference: np.ndarray) -> dict:
    """max |delta p(AI)| against the reference; faithful within 1e-3."""
    delta = float(np.abs(_sigmoid(outputs) - _sigmoid(reference)).max())
    return {"max_abs_delta_p": round(delta, 6), "faithful": bool(delta <= 1e-3)}


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.asarray(logits, np.float64).reshape(-1)))


def probe_fidelity(labels: pd.DataFrame, embeddings_by_engine: dict[str, np.ndarray], seed: int = 0) -> dict:
    """The probe fitted on each engine's train-split embeddings, scored on its test split: ROC-AUC with
    the 95 % interval of resampled source groups. `labels`: prepared (split, label, source groups), in
    the rows' order of the matrices."""
    from detector_pipeline.data.splits import group_column
    from detector_pipeline.evaluation.statistics import ranking_with_intervals
    from detector_pipeline.models.probe import fit_selected, probe_scores, probe_state

    train, test = (labels["split"] == "train").to_numpy(), (labels["split"] == "test").to_numpy()
    out = {}
    for engine, matrix in embeddings_by_engine.items():
        fitted, _ = fit_selected(matrix[train], labels["label"].to_numpy()[train],
                                 group_column(labels).to_numpy()[train], seed)
        state = probe_state(fitted)
        figures = ranking_with_intervals(labels["label"].to_numpy()[test], probe_scores(state, matrix[test]),
                                         group_column(labels).to_numpy()[test])
        out[engine] = {"test_roc_auc": figures["roc_auc"], "test_pr_auc": figures["pr_auc"], "n": figures["n"]}
    return out
