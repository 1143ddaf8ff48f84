"""A saved detector as an ONNX graph for serving. The graph is the network alone: the normalized crop
in, the logit out. What surrounds it (decoding, the crop, the mean/std normalization, the sigmoid) is
written beside it in preprocessing.json, the recipe a serving process in another language follows,
and is done here by models/scorer.py, the same code for both engines: `score --engine onnx` and the
PyTorch path differ only in the network's arithmetic.

An export is never trusted on its own: it is checked against the PyTorch model in fp32 on real images,
both engines through the one scorer, and the result (max |delta P(AI)|, tolerance 1e-4) is recorded in
preprocessing.json; `score --engine onnx` refuses an export that failed it.

    detector-pipeline export VERSION --format onnx      # -> data/models/detector/VERSION/export/onnx/
"""

import hashlib
import importlib.metadata
import io
import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from detector_pipeline.config.device import to_device
from detector_pipeline.errors import ArtifactError, BadInput
from detector_pipeline.models.detector import Preprocessing, load_network
from detector_pipeline.models.scorer import DetectorScorer
from detector_pipeline.registry import artifacts

OPSET = 17
INPUT, OUTPUT = "x", "logit"
TOLERANCE = 1e-4  # max |delta P(AI)| against PyTorch fp32: far below any threshold's resolution
MODEL_FILE, RECIPE_FILE = "model.onnx", "preprocessing.json"
REEXPORT = "run `detector-pipeline export {version} --format onnx`"
# What happens to an image before the graph, in words a serving process in another language can follow
# (data/transforms.py NativeCrop and resized_transform).
NATIVE_CROP_RULE = ("centre crop of crop_size x crop_size at native resolution, never downscaled; only when "
                    "the short side is below crop_size is the image first upscaled with bicubic (PIL) so that "
                    "its short side is crop_size (the long side scaled alike, rounded)")
RESIZE_RULE = "the whole image resized to crop_size x crop_size, bicubic with antialiasing (no crop)"
_PARITY_BATCH = 32  # parity images are scored this many at a time: memory stays flat for any number of images


class OnnxUnavailable(ArtifactError):
    """onnx or onnxruntime (dependencies of the project) is missing on this machine: no export can be
    made or run here."""


def export_dir_for(model_folder: Path) -> Path:
    """Where a version's ONNX export lives: beside its weights, so it goes wherever the version goes."""
    return Path(model_folder) / "export" / "onnx"


def onnx_bytes(model: torch.nn.Module, example: torch.Tensor, input_name: str = "x", output_name: str = "y") -> bytes:
    """The model as an ONNX graph with a dynamic batch axis. The TorchScript exporter (dynamo=False):
    the dynamo exporter needs onnxscript, which is not installed. Bytes, so that the caller decides
    where and how (atomically) they are written."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice, on every call
        torch.onnx.export(model, (example[:1],), buffer, dynamo=False, input_names=[input_name],
                          output_names=[output_name], dynamic_axes={input_name: {0: "n"}, output_name: {0: "n"}},
                          opset_version=OPSET)
    return buffer.getvalue()


def ort_session(model: Path | bytes):
    """An ONNX Runtime session on the CPU with as many threads as torch uses, so the two engines
    compete for the machine on equal terms."""
    try:
        import onnxruntime
    except ImportError:
        raise OnnxUnavailable("onnxruntime is not installed: pip install -e . (make venv does)") from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    source = model if isinstance(model, bytes) else str(model)
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])


class OnnxEngine:
    """An export's graph in ONNX Runtime, as models/scorer.py runs an engine: a normalized float
    batch -> logits. `recipe` is its preprocessing.json."""

    def __init__(self, session, recipe: dict):
        self.session, self.recipe, self.version = session, recipe, recipe["version"]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(x.cpu().numpy())})[0])


def load_onnx_engine(export_dir: Path) -> OnnxEngine:
    """An export read back, its graph checked against the sha256 its recipe records: a graph replaced
    or half-rewritten after the export never runs under an older recipe."""
    export_dir = Path(export_dir)
    try:
        recipe = json.loads((export_dir / RECIPE_FILE).read_text())
        graph = (export_dir / MODEL_FILE).read_bytes()
    except FileNotFoundError as exc:
        raise ArtifactError(f"ONNX export incomplete: {exc.filename} does not exist; "
                            f"{REEXPORT.format(version='VERSION')}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"ONNX export in {export_dir} is unreadable ({exc}); "
                            f"{REEXPORT.format(version='VERSION')}") from None
    missing = {"version", "crop_size", "native_crops", "mean", "std", "onnx_sha256", "input"} - set(recipe)
    if missing:
        raise ArtifactError(f"{export_dir / RECIPE_FILE} lacks {', '.join(sorted(missing))}; "
                            f"{REEXPORT.format(version=recipe.get('version', 'VERSION'))}")
    if recipe["input"].get("name") != INPUT:  # an export whose graph also held the normalization and sigmoid
        raise ArtifactError(f"{export_dir / MODEL_FILE} takes {recipe['input'].get('name')!r}, not the normalized "
                            f"crop {INPUT!r}: an export of an earlier layout; {REEXPORT.format(version=recipe['version'])}")
    if hashlib.sha256(graph).hexdigest() != recipe["onnx_sha256"]:
        raise ArtifactError(f"{export_dir / MODEL_FILE} does not match the sha256 in {RECIPE_FILE} (changed after "
                            f"the export); {REEXPORT.format(version=recipe['version'])}")
    return OnnxEngine(ort_session(graph), recipe)


def load_export_of(model_folder: Path) -> tuple[OnnxEngine, dict]:
    """A version's export as feed scoring uses it (present, of this very version, and past its parity
    check; otherwise one line saying how to make it), and the version's config.json (its preprocessing)."""
    model_folder = Path(model_folder)
    config, folder = _saved_config(model_folder), export_dir_for(model_folder)
    version = config["version"]
    if not (folder / MODEL_FILE).is_file():
        raise ArtifactError(f"detector {version} has no ONNX export ({folder / MODEL_FILE} does not exist): "
                            f"{REEXPORT.format(version=version)}")
    engine = load_onnx_engine(folder)
    if engine.version != version:
        raise ArtifactError(f"the ONNX export in {folder} is of detector {engine.version}, not {version}: "
                            f"{REEXPORT.format(version=version)}")
    parity = engine.recipe.get("parity") or {}
    if not parity.get("passed"):
        raise ArtifactError(f"the ONNX export of detector {version} failed its parity check (max |delta p_ai| = "
                            f"{parity.get('max_abs_delta_p')} > {TOLERANCE:g}): score with --engine torch")
    return engine, config


def _saved_config(model_folder: Path) -> dict:
    try:
        config = json.loads((model_folder / "config.json").read_text())
        if not isinstance(config, dict) or "version" not in config:
            raise ValueError("no version recorded")
        return config
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        raise ArtifactError(f"{model_folder / 'config.json'} is missing or unreadable ({exc}); retrain it, or "
                            "promote another version (detector-pipeline models, then promote VERSION)") from None


def export_onnx(model_folder: Path, out_dir: Path, parity_images: Sequence[Path],
                threshold: float | None = None) -> dict:
    """Writes `out_dir/model.onnx` and `out_dir/preprocessing.json` (the recipe, with the parity
    result) for the detector saved in `model_folder` (its files verified first), each atomically, the
    recipe last. Parity: the readable `parity_images`, the same crops through PyTorch fp32 and ONNX
    Runtime. Returns the paths and the parity figures; `passed` False is the caller's to act on.
    The graph replaces an earlier one only once parity is measured, the recipe right after it.
    `threshold`: the operating threshold the feed uses with this version, recorded for serving."""
    cpu = torch.device("cpu")
    model, config = load_network(Path(model_folder))
    preprocessing, version = Preprocessing.of_config(config), config["version"]
    reference = DetectorScorer.of_module(to_device(model, cpu), preprocessing, cpu, "fp32", _PARITY_BATCH)
    crop = preprocessing.crop_size
    graph = onnx_bytes(model.eval(), torch.zeros(1, 3, crop, crop), INPUT, OUTPUT)
    out_dir = Path(out_dir)
    recipe = _recipe(version, preprocessing, threshold, graph)
    # The graph takes its place only once its parity is measured: an export that stops half-way (no
    # readable image, no ONNX Runtime) leaves the previous graph and recipe as they were.
    with artifacts.atomic_path(out_dir / MODEL_FILE) as tmp:
        tmp.write_bytes(graph)
        exported = DetectorScorer(OnnxEngine(ort_session(tmp), recipe), preprocessing, cpu, version,
                                  _PARITY_BATCH)  # the file as written, not the bytes
        n, delta = _parity(reference, exported, parity_images)
    parity = {"n_parity_images": n, "max_abs_delta_p": delta, "tolerance": TOLERANCE, "passed": delta <= TOLERANCE}
    artifacts.write_json_atomic(out_dir / RECIPE_FILE, {
        **recipe, "parity": {**parity, "reference": "PyTorch eager fp32 on the CPU, the same images"}})
    return {"onnx": str(out_dir / MODEL_FILE), "preprocessing": str(out_dir / RECIPE_FILE), "version": version,
            **parity}


def _recipe(version: str, p: Preprocessing, threshold: float | None, graph: bytes) -> dict:
    """Everything a serving process needs besides the graph, and what made it."""
    return {"format": "onnx", "opset": OPSET, "version": version,
            "crop_size": p.crop_size, "native_crops": p.native_crops, "mean": list(p.mean), "std": list(p.std),
            "resize": NATIVE_CROP_RULE if p.native_crops else RESIZE_RULE,
            "input": {"name": INPUT, "dtype": "float32", "shape": ["n", 3, p.crop_size, p.crop_size],
                      "layout": "float32 NCHW RGB: the uint8 crop (0-255) / 255, minus mean, over std, per channel"},
            "output": {"name": OUTPUT, "dtype": "float32", "shape": ["n", 1],
                       "meaning": "the detector's logit: P(AI) = 1 / (1 + exp(-logit)); ai at or above the threshold"},
            "threshold": threshold, "onnx_sha256": hashlib.sha256(graph).hexdigest(),
            "exported_with": {"torch": torch.__version__, "onnx": _package_version("onnx"),
                              "onnxruntime": _package_version("onnxruntime")}}


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _parity(reference: DetectorScorer, exported: DetectorScorer, paths: Sequence[Path]) -> tuple[int, float]:
    """(images compared, max |delta P(AI)|): the same images through PyTorch fp32 and the export, each
    batch at once; an unreadable image is left out (and not counted)."""
    n, worst = 0, 0.0
    for expected, got in zip(reference.stream(list(paths)), exported.stream(list(paths)), strict=True):
        scored = [(a.p_ai, b.p_ai) for a, b in zip(expected, got, strict=True) if a.error is None]
        if scored:
            worst = max(worst, float(np.abs(np.diff(np.asarray(scored, np.float64), axis=1)).max()))
        n += len(scored)
    if n == 0:
        raise BadInput(f"none of the {len(paths)} parity images could be read: give readable image files")
    return n, worst
