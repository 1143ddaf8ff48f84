"""A detector as it is saved: the fields of its config.json are put together here and nowhere else
(training, the bench and the tests all save through `save_detector`). The version id is a hash of the
weights and this config (registry/artifacts.content_version), so a field added or renamed here changes
every detector's version."""

from pathlib import Path

import torch

from detector_pipeline.models.backbones import BackboneSpec
from detector_pipeline.registry import artifacts
from detector_pipeline.training.settings import TrainResult, TrainSettings, settings_dict


def detector_config(spec: BackboneSpec, settings: TrainSettings, labels_version: str,
                    result: TrainResult | None = None) -> dict:
    """What config.json records of a detector: its backbone, the settings it was trained with, the
    preprocessing scoring applies (models/detector.Preprocessing), the labels it learnt from, and how
    its training went (`result`; None for a network saved without training, as the bench and tests do)."""
    return {"kind": "detector", "backbone": spec.record(), "backbone_description": spec.describe(),
            "randomly_initialised": spec.is_random, "seed": settings.seed, "settings": settings_dict(settings),
            "preprocessing": settings.preprocessing(spec.architecture).as_dict(),
            "labels_version": labels_version,
            "best_epoch": None if result is None else result.best_epoch,
            "best_val_roc_auc": None if result is None else result.best_val_roc_auc,
            "history": [] if result is None else result.history,
            "resumed_from_epoch": None if result is None else result.resumed_from_epoch}


def save_detector(root: Path, state: dict[str, torch.Tensor], spec: BackboneSpec, settings: TrainSettings,
                  labels_version: str, result: TrainResult | None = None) -> tuple[str, Path, dict]:
    """Saves `<root>/detector/<version>/{model.safetensors,config.json}`; returns (version, folder, config)."""
    config = detector_config(spec, settings, labels_version, result)
    version, folder = artifacts.save_model(root, "detector", state, config)
    return version, folder, config
