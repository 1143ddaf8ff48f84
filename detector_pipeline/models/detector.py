"""The detector's preprocessing, saved with every model the way timm keeps `pretrained_cfg`; loading a
saved version; and the one inference path that training's validation, the evaluation, the gate
checks and feed scoring share (autocast, channels-last, normalization on the device)."""

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import timm
import torch

from detector_pipeline.config.device import autocast_dtype, to_device
from detector_pipeline.data.datasets import ImageFiles, make_loader
from detector_pipeline.data.images import decode_rgb
from detector_pipeline.data.jpeg_regions import RegionDecoder
from detector_pipeline.data.transforms import (
    BatchNormalize,
    detector_transform,
    resized_transform,
)
from detector_pipeline.models.backbones import BackboneSpec, create_backbone
from detector_pipeline.registry import artifacts


@dataclass(frozen=True)
class Preprocessing:
    """What an image goes through before the model: a crop (native resolution, or the whole image
    resized), then the backbone's mean and std."""

    crop_size: int
    native_crops: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def for_backbone(cls, architecture: str, crop_size: int, native_crops: bool) -> "Preprocessing":
        cfg = timm.get_pretrained_cfg(architecture)
        return cls(crop_size, native_crops, tuple(cfg.mean), tuple(cfg.std))

    @classmethod
    def of_config(cls, config: dict) -> "Preprocessing":
        """A saved model's preprocessing; a model saved before it was recorded: from its settings."""
        if "preprocessing" in config:
            saved = config["preprocessing"]
            return cls(saved["crop_size"], saved["native_crops"], tuple(saved["mean"]), tuple(saved["std"]))
        settings = config["settings"]
        return cls.for_backbone(config["backbone"]["architecture"], settings["crop_size"],
                                settings.get("native_crops", True))

    def as_dict(self) -> dict:
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}

    def transform(self, train: bool, augment: bool = False):
        """Per image, in the loader: PIL -> uint8 crop (`augment`: training's feed processing)."""
        return (detector_transform if self.native_crops else resized_transform)(self.crop_size, train, augment)

    def decoder(self, train: bool, restart_copies: Path | None = None):
        """Per file, in the loader: bytes -> PIL. Native training crops decode only the crop's region
        of a large JPEG (the same pixels, a fraction of the work), through restart-marker copies kept
        in `restart_copies` where given; the rest decodes whole."""
        return RegionDecoder(self.crop_size, restart_copies) if train and self.native_crops else decode_rgb

    def normalizer(self, device: torch.device) -> BatchNormalize:
        """Per batch, on the device: uint8 -> the model's normalized float input."""
        return BatchNormalize(self.mean, self.std, device)


@dataclass
class LoadedDetector:
    model: torch.nn.Module
    preprocessing: Preprocessing
    version: str
    amp: str


def load_detector(folder: Path, device: torch.device) -> LoadedDetector:
    """A saved detector, its files verified against its version id."""
    state, config = artifacts.load_model_files(folder)
    model = create_backbone(BackboneSpec(**{**config["backbone"], "weights": "random"}), num_classes=1)
    model.load_state_dict(state)
    return LoadedDetector(to_device(model, device).eval(), Preprocessing.of_config(config), config["version"],
                          config.get("settings", {}).get("amp", "auto"))


@torch.inference_mode()
def probabilities(model: torch.nn.Module, batch: torch.Tensor, normalize: BatchNormalize, device: torch.device,
                  amp: str = "auto") -> np.ndarray:
    """P(AI) for one batch of uint8 crops: the inference step every caller goes through."""
    dtype = autocast_dtype(device, amp)
    with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        return torch.sigmoid(model(normalize(batch)).float().squeeze(1)).cpu().numpy()


class _Then:
    """A perturbation (PIL -> PIL) before a transform; a class, so loader workers can pickle it."""

    def __init__(self, first: Callable, then: Callable):
        self.first, self.then = first, then

    def __call__(self, image):
        return self.then(self.first(image))


def predict(model: torch.nn.Module, paths: Sequence[Path], preprocessing: Preprocessing, device: torch.device,
            amp: str = "auto", perturb: Callable | None = None, batch_size: int = 64, num_workers: int = 0) -> np.ndarray:
    """P(AI) per image file; `perturb` (PIL -> PIL) is applied to each decoded image first."""
    transform = preprocessing.transform(train=False)
    if perturb is not None:
        transform = _Then(perturb, transform)
    loader = make_loader(ImageFiles(paths, None, transform), batch_size, num_workers, device)
    normalize = preprocessing.normalizer(device)
    model.eval()
    out = [probabilities(model, x, normalize, device, amp) for x in loader]
    return np.concatenate(out) if out else np.zeros(0, np.float32)
