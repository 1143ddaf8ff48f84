"""A saved detector as one ONNX graph for serving: uint8 crops in, P(AI) out. The float conversion,
the backbone's mean/std normalization and the sigmoid are inside the graph, so a serving process only
decodes and crops (the recipe is written beside the graph, in preprocessing.json), and no serving
code can get the normalization subtly wrong.

An export is never trusted on its own: it is checked against the PyTorch model in fp32 on real images,
the same uint8 crops through both, and the result (max |delta P(AI)|, tolerance 1e-4) is recorded in
preprocessing.json; `score --engine onnx` refuses an export that failed it.

    detector-pipeline export VERSION --format onnx      # -> data/models/detector/VERSION/export/onnx/
"""

import hashlib
import importlib.metadata
import io
import json
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from detector_pipeline.data.images import BadImage, open_rgb
from detector_pipeline.errors import ArtifactError, BadInput
from detector_pipeline.models.detector import LoadedDetector, Preprocessing, load_detector, probabilities
from detector_pipeline.registry import artifacts

OPSET = 17
INPUT, OUTPUT = "pixels", "p_ai"
TOLERANCE = 1e-4  # max |delta P(AI)| against PyTorch fp32: far below any threshold's resolution
MODEL_FILE, RECIPE_FILE = "model.onnx", "preprocessing.json"
REEXPORT = "run `detector-pipeline export {version} --format onnx`"
# What happens to an image before the graph, in words a serving process in another language can follow
# (data/transforms.py NativeCrop and resized_transform).
NATIVE_CROP_RULE = ("centre crop of crop_size x crop_size at native resolution, never downscaled; only when "
                    "the short side is below crop_size is the image first upscaled with bicubic (PIL) so that "
                    "its short side is crop_size (the long side scaled alike, rounded)")
RESIZE_RULE = "the whole image resized to crop_size x crop_size, bicubic with antialiasing (no crop)"
_PARITY_BATCH = 32  # parity crops are scored this many at a time: memory stays flat for any number of images


class OnnxUnavailable(ArtifactError):
    """onnx or onnxruntime (dependencies of the project) is missing on this machine: no export can be
    made or run here."""


def export_dir_for(model_folder: Path) -> Path:
    """Where a version's ONNX export lives: beside its weights, so it goes wherever the version goes."""
    return Path(model_folder) / "export" / "onnx"


class _Serving(torch.nn.Module):
    """The detector as a serving process sees it: uint8 NCHW crops -> P(AI) [N]. The same arithmetic
    as BatchNormalize (x * 1/255, minus mean, over std) followed by the sigmoid `probabilities` applies."""

    def __init__(self, model: torch.nn.Module, preprocessing: Preprocessing):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(preprocessing.mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(preprocessing.std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.float().mul(1.0 / 255).sub(self.mean).div(self.std)
        return torch.sigmoid(self.model(x).float().squeeze(1))


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


class OnnxDetector:
    """An export as a serving process runs it: `transform` (PIL -> uint8 crop, the same as the PyTorch
    path's) and `p_ai` (uint8 batch -> P(AI)); `recipe` is preprocessing.json."""

    def __init__(self, session, recipe: dict):
        self.session, self.recipe, self.version = session, recipe, recipe["version"]
        self.preprocessing = Preprocessing(recipe["crop_size"], recipe["native_crops"], tuple(recipe["mean"]),
                                           tuple(recipe["std"]))
        self.transform = self.preprocessing.transform(train=False)

    def p_ai(self, batch: torch.Tensor) -> np.ndarray:
        """P(AI) per crop of a uint8 (N, 3, S, S) batch, float32."""
        return self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(batch.numpy())})[0]


def load_onnx_detector(export_dir: Path) -> OnnxDetector:
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
    missing = {"version", "crop_size", "native_crops", "mean", "std", "onnx_sha256"} - set(recipe)
    if missing:
        raise ArtifactError(f"{export_dir / RECIPE_FILE} lacks {', '.join(sorted(missing))}; "
                            f"{REEXPORT.format(version=recipe.get('version', 'VERSION'))}")
    if hashlib.sha256(graph).hexdigest() != recipe["onnx_sha256"]:
        raise ArtifactError(f"{export_dir / MODEL_FILE} does not match the sha256 in {RECIPE_FILE} (changed after "
                            f"the export); {REEXPORT.format(version=recipe['version'])}")
    return OnnxDetector(ort_session(graph), recipe)


def load_export_of(model_folder: Path) -> OnnxDetector:
    """A version's export as feed scoring uses it: present, of this very version, and past its parity
    check; otherwise one line saying how to make it."""
    model_folder = Path(model_folder)
    version, folder = _saved_version(model_folder), export_dir_for(model_folder)
    if not (folder / MODEL_FILE).is_file():
        raise ArtifactError(f"detector {version} has no ONNX export ({folder / MODEL_FILE} does not exist): "
                            f"{REEXPORT.format(version=version)}")
    detector = load_onnx_detector(folder)
    if detector.version != version:
        raise ArtifactError(f"the ONNX export in {folder} is of detector {detector.version}, not {version}: "
                            f"{REEXPORT.format(version=version)}")
    parity = detector.recipe.get("parity") or {}
    if not parity.get("passed"):
        raise ArtifactError(f"the ONNX export of detector {version} failed its parity check (max |delta p_ai| = "
                            f"{parity.get('max_abs_delta_p')} > {TOLERANCE:g}): score with --engine torch")
    return detector


def _saved_version(model_folder: Path) -> str:
    try:
        return json.loads((model_folder / "config.json").read_text())["version"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
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
    detector = load_detector(Path(model_folder), torch.device("cpu"))
    crop = detector.preprocessing.crop_size
    graph = onnx_bytes(_Serving(detector.model, detector.preprocessing).eval(),
                       torch.zeros(1, 3, crop, crop, dtype=torch.uint8), INPUT, OUTPUT)
    out_dir = Path(out_dir)
    recipe = _recipe(detector, threshold, graph)
    # The graph takes its place only once its parity is measured: an export that stops half-way (no
    # readable image, no ONNX Runtime) leaves the previous graph and recipe as they were.
    with artifacts.atomic_path(out_dir / MODEL_FILE) as tmp:
        tmp.write_bytes(graph)
        exported = OnnxDetector(ort_session(tmp), recipe)  # the file as written, not the bytes
        n, delta = _parity(detector, exported, parity_images)
    parity = {"n_parity_images": n, "max_abs_delta_p": delta, "tolerance": TOLERANCE, "passed": delta <= TOLERANCE}
    artifacts.write_json_atomic(out_dir / RECIPE_FILE, {
        **recipe, "parity": {**parity, "reference": "PyTorch eager fp32 on the CPU, the same uint8 crops"}})
    return {"onnx": str(out_dir / MODEL_FILE), "preprocessing": str(out_dir / RECIPE_FILE),
            "version": detector.version, **parity}


def _recipe(detector: LoadedDetector, threshold: float | None, graph: bytes) -> dict:
    """Everything a serving process needs besides the graph, and what made it."""
    p = detector.preprocessing
    return {"format": "onnx", "opset": OPSET, "version": detector.version,
            "crop_size": p.crop_size, "native_crops": p.native_crops, "mean": list(p.mean), "std": list(p.std),
            "resize": NATIVE_CROP_RULE if p.native_crops else RESIZE_RULE,
            "input": {"name": INPUT, "dtype": "uint8", "layout": "uint8 NCHW RGB, 0-255",
                      "shape": ["n", 3, p.crop_size, p.crop_size]},
            "output": {"name": OUTPUT, "dtype": "float32", "shape": ["n"],
                       "meaning": "P(AI): the sigmoid of the detector's logit; ai at or above the threshold"},
            "threshold": threshold, "onnx_sha256": hashlib.sha256(graph).hexdigest(),
            "exported_with": {"torch": torch.__version__, "onnx": _package_version("onnx"),
                              "onnxruntime": _package_version("onnxruntime")}}


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _parity(detector: LoadedDetector, exported: OnnxDetector, paths: Sequence[Path]) -> tuple[int, float]:
    """(images compared, max |delta P(AI)|): each batch of crops through PyTorch fp32 and the export."""
    cpu = torch.device("cpu")
    normalize = detector.preprocessing.normalizer(cpu)
    n, worst = 0, 0.0
    for batch in _crop_batches(paths, exported.transform):
        reference = probabilities(detector.model, batch, normalize, cpu, "fp32")
        worst = max(worst, float(np.abs(exported.p_ai(batch).astype(np.float64) - reference).max()))
        n += len(batch)
    if n == 0:
        raise BadInput(f"none of the {len(paths)} parity images could be read: give readable image files")
    return n, worst


def _crop_batches(paths: Sequence[Path], transform) -> Iterator[torch.Tensor]:
    """uint8 crop batches of the images that decode; an unreadable one is left out (and not counted)."""
    crops = []
    for path in paths:
        try:
            crops.append(transform(open_rgb(Path(path))))
        except (BadImage, OSError):
            continue
        if len(crops) == _PARITY_BATCH:
            yield torch.stack(crops)
            crops = []
    if crops:
        yield torch.stack(crops)
