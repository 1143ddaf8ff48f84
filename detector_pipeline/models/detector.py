"""The detector's preprocessing, saved with every model the way timm keeps `pretrained_cfg`, and a saved
version's network loaded back. Scoring images with either is models/scorer.py's, the one inference
path every caller shares."""

from dataclasses import asdict, dataclass
from pathlib import Path

import timm
import torch

from detector_pipeline.data.images import decode_rgb
from detector_pipeline.data.jpeg_regions import RegionDecoder
from detector_pipeline.data.transforms import BatchNormalize, detector_transform, resized_transform
from detector_pipeline.errors import ArtifactError
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
        """A saved model's preprocessing (config.json, training/saved.detector_config)."""
        saved = config.get("preprocessing")
        if saved is None:
            raise ArtifactError(f"detector {config.get('version')} records no preprocessing in its config.json "
                                "(saved by an older version of the pipeline): retrain it")
        return cls(saved["crop_size"], saved["native_crops"], tuple(saved["mean"]), tuple(saved["std"]))

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


def load_network(folder: Path) -> tuple[torch.nn.Module, dict]:
    """A saved detector's network on the CPU, its files verified against its version id, and its
    config (config.json: the version, the preprocessing, the settings it was trained with)."""
    state, config = artifacts.load_model_files(folder)
    model = create_backbone(BackboneSpec(**{**config["backbone"], "weights": "random"}), num_classes=1)
    model.load_state_dict(state)
    return model, config
