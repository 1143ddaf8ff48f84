"""The one way a detector's P(AI) is computed, whoever asks: training's validation (a model in memory),
the report and its perturbations, the gate, batch evaluation, the ablations, feed scoring and the CLI,
the ONNX export's parity check and the bench (a saved version).

A `DetectorScorer` is a network behind an engine plus the preprocessing saved with it. Its one loop
decodes the images (paths or encoded bytes) in loader workers, crops them to uint8 with the saved
preprocessing and batches them; per batch, on the device, the shared code normalizes with the saved
mean and std, the engine gives the logits, and the shared code takes their sigmoid. The engine is the
network alone, in PyTorch (`TorchEngine`) or in ONNX Runtime (export/onnx_export.OnnxEngine), so the
two can differ only in the network's arithmetic.

    scorer = DetectorScorer.load(folder, engine="onnx")
    scorer.score([path, encoded_bytes])            # P(AI) per image, in order
    for rows in scorer.stream(paths): ...          # per batch; an unreadable image is a row with an error
"""

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from detector_pipeline.config.device import autocast_dtype, pick_device, to_device
from detector_pipeline.data.images import BadImage, decode_rgb, read_regular_file
from detector_pipeline.errors import BadInput
from detector_pipeline.models.detector import Preprocessing, load_network

ENGINES = ("torch", "onnx")
Image = Path | str | bytes  # a file, or an image's encoded bytes


class Engine(Protocol):
    """The network alone: a normalized float batch on the scorer's device -> float32 logits."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class TorchEngine:
    """The network in PyTorch, in eval mode, under the autocast its training used (`amp`)."""

    def __init__(self, model: torch.nn.Module, device: torch.device, amp: str = "auto"):
        self.model, self.dtype, self.device = model.eval(), autocast_dtype(device, amp), device

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            return self.model(x).float()


class ScoredImage(NamedTuple):
    index: int  # the image's place among the inputs
    path: str | None  # None for bytes
    sha256: str | None  # of the bytes read; None when the file can't be read
    p_ai: float | None  # None when the image can't be used
    error: str | None  # why it can't be used (data/images.BadImage's message)


class DetectorScorer:
    """A network behind an engine, the preprocessing saved with it, and how to run the loop (device,
    batch size, loader workers). `version`: the saved version's id; None for a network in memory."""

    def __init__(self, engine: Engine, preprocessing: Preprocessing, device: torch.device, version: str | None = None,
                 batch_size: int = 64, num_workers: int = 0):
        self.engine, self.preprocessing, self.device, self.version = engine, preprocessing, device, version
        self.batch_size, self.num_workers = batch_size, num_workers
        self.normalize = preprocessing.normalizer(device)

    @classmethod
    def load(cls, folder: Path, engine: str = "torch", device: torch.device | str = "auto", batch_size: int = 64,
             num_workers: int = 0) -> "DetectorScorer":
        """A saved version (its files verified against its version id), with the preprocessing saved
        with it. "torch": its weights on `device`; "onnx": its ONNX export (`detector-pipeline export`,
        present, of this version and past its parity check) in ONNX Runtime on the CPU."""
        if engine not in ENGINES:
            raise BadInput(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        if engine == "onnx":
            # the export module builds on this one (its parity check scores through it): imported here
            from detector_pipeline.export.onnx_export import load_export_of

            onnx_engine, config = load_export_of(Path(folder))
            return cls(onnx_engine, Preprocessing.of_config(config), torch.device("cpu"), config["version"],
                       batch_size, num_workers)
        device = pick_device(device) if isinstance(device, str) else device
        model, config = load_network(Path(folder))
        return cls(TorchEngine(to_device(model, device), device, config.get("settings", {}).get("amp", "auto")),
                   Preprocessing.of_config(config), device, config["version"], batch_size, num_workers)

    @classmethod
    def of_module(cls, model: torch.nn.Module, preprocessing: Preprocessing, device: torch.device, amp: str = "auto",
                  batch_size: int = 64, num_workers: int = 0) -> "DetectorScorer":
        """A network in memory (training's validation), already on `device`."""
        return cls(TorchEngine(model, device, amp), preprocessing, device, None, batch_size, num_workers)

    @torch.inference_mode()
    def p_ai(self, batch: torch.Tensor) -> np.ndarray:
        """P(AI) per crop of a uint8 (N, 3, S, S) batch, float32."""
        return torch.sigmoid(self.engine(self.normalize(batch)).reshape(-1)).cpu().numpy()

    def stream(self, images: Iterable[Image], perturb: Callable | None = None) -> Iterator[list[ScoredImage]]:
        """P(AI) as a list of rows per batch, in the order of `images`; an image that can't be used is
        a row with its error. `perturb` (PIL -> PIL) is applied to each decoded image first."""
        for rows, x in self._batches(images, perturb):
            scores = iter(() if x is None else self.p_ai(x).tolist())
            yield [row if row.error is not None else row._replace(p_ai=next(scores)) for row in rows]

    def score(self, images: Sequence[Image], perturb: Callable | None = None) -> np.ndarray:
        """P(AI) per image, float32, in order; BadImage for an image that can't be used."""
        out = np.zeros(len(images), np.float32)
        for rows in self.stream(images, perturb):
            for row in _usable(rows):
                out[row.index] = row.p_ai
        return out

    def model_inputs(self, images: Sequence[Image]) -> torch.Tensor:
        """The normalized batch the engine sees for these images, all at once (the bench times engines on it)."""
        batches = []
        for rows, x in self._batches(images):
            _usable(rows)
            batches.append(self.normalize(x).contiguous())
        return torch.cat(batches)

    def _batches(self, images: Iterable[Image], perturb: Callable | None = None,
                 ) -> Iterator[tuple[list[ScoredImage], torch.Tensor | None]]:
        """The one loop that decodes and batches: per batch, a row per image (not scored yet) and the
        uint8 crops of those without an error (None if none). `images` is read lazily, once per loader
        worker: give a re-iterable, such as a list."""
        transform = self.preprocessing.transform(train=False)
        dataset = _Decoded(images, transform if perturb is None else _Then(perturb, transform), self.batch_size)
        yield from DataLoader(dataset, batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=_collate,
                              pin_memory=self.device.type == "cuda")


def _usable(rows: list[ScoredImage]) -> list[ScoredImage]:
    """The rows, if every image could be used; else BadImage naming the first that could not."""
    bad = next((row for row in rows if row.error is not None), None)
    if bad is not None:
        raise BadImage(f"{bad.path or f'image {bad.index}'}: {bad.error}")
    return rows


def _read(image: Image) -> bytes:
    return image if isinstance(image, bytes) else read_regular_file(Path(image))


class _Decoded(IterableDataset):
    """A row (not scored yet) and a uint8 crop (None when unusable) per image, streamed. With
    loader workers, worker k takes the k-th of every n consecutive batches: the loader, which takes
    batches from its workers in turn, then yields them in input order and with the same images in
    each as without workers."""

    def __init__(self, images: Iterable[Image], transform: Callable, batch_size: int):
        self.images, self.transform, self.batch_size = images, transform, batch_size

    def __iter__(self):
        worker = get_worker_info()
        n, k = (worker.num_workers, worker.id) if worker else (1, 0)
        for i, image in enumerate(self.images):
            if (i // self.batch_size) % n == k:
                yield self._decode(i, image)

    def _decode(self, i: int, image: Image):
        """One read: the hash and the pixels come from the same bytes."""
        path = None if isinstance(image, bytes) else str(image)
        try:
            data = _read(image)
            return ScoredImage(i, path, hashlib.sha256(data).hexdigest(), None, None), self.transform(decode_rgb(data))
        except (BadImage, OSError) as exc:
            return ScoredImage(i, path, None, None, str(exc)), None


def _collate(decoded: list[tuple]) -> tuple[list[ScoredImage], torch.Tensor | None]:
    crops = [x for _, x in decoded if x is not None]
    return [row for row, _ in decoded], torch.stack(crops) if crops else None


class _Then:
    """A perturbation (PIL -> PIL) before a transform; a class, so loader workers can pickle it."""

    def __init__(self, first: Callable, then: Callable):
        self.first, self.then = first, then

    def __call__(self, image):
        return self.then(self.first(image))
