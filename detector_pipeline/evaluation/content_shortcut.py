"""The content-shortcut baseline: how far can the label be told from what the picture shows alone?

Each image is reduced to 32 x 32 px and enlarged again: the subject survives, every generator trace
(upsampling patterns, noise, JPEG history at full resolution) is gone. Frozen ImageNet features of that
image feed the same standardized, class-balanced logistic regression as the probe, its C chosen the
same way (grouped cross-validation on train), trained on the train split and scored on the
in-distribution test. A ROC-AUC well above 0.5 means the classes differ
in content, and part of any detector's score may be subject detection rather than forensics.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torchvision.transforms import v2 as T

from detector_pipeline.data.datasets import ImageFiles, make_loader
from detector_pipeline.data.splits import group_column
from detector_pipeline.evaluation.metrics import roc_auc
from detector_pipeline.models.backbones import (
    BackboneSpec,
    create_backbone,
    data_config,
)
from detector_pipeline.models.probe import fit_selected
from detector_pipeline.registry.hash_cache import HashCache

REDUCED_SIDE = 32
CACHE_FOLDER = "cache/content-features"
CONTENT_LIMIT = 0.65  # above this, the report says the classes differ in content


class ReducedToSubject:
    """PIL image -> the same image reduced to `side` px (box filter) and enlarged back (bicubic)."""

    def __init__(self, side: int, size: int):
        self.side, self.size = side, size

    def __call__(self, image: Image.Image) -> Image.Image:
        small = image.resize((self.side, self.side), Image.Resampling.BOX)
        return small.resize((self.size, self.size), Image.Resampling.BICUBIC)


def cache_path(data_dir: Path, spec: BackboneSpec) -> Path:
    return data_dir / CACHE_FOLDER / f"{spec.key()}__{REDUCED_SIDE}px"


@torch.inference_mode()
def _features(spec: BackboneSpec, files: list[Path], batch_size: int) -> np.ndarray:
    # A randomly initialised backbone must be the same network on every call: features cached by an
    # earlier call (the train split) and computed now (new test images) have to be comparable.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = create_backbone(spec, num_classes=0).eval()
    cfg = data_config(model)
    size = cfg["input_size"][-1]
    transform = T.Compose([ReducedToSubject(REDUCED_SIDE, size), T.PILToTensor(), T.ToDtype(torch.float32, scale=True),
                           T.Normalize(cfg["mean"], cfg["std"])])
    loader = make_loader(ImageFiles(files, None, transform), batch_size, 0, torch.device("cpu"))
    return np.concatenate([model(x).float().numpy() for x in loader]) if files else np.zeros((0, model.num_features))


def content_features(spec: BackboneSpec, table: pd.DataFrame, cache: Path, batch_size: int = 32) -> np.ndarray:
    """Features of table's images (file, sha256) in row order; computed once per image content."""
    store = HashCache(cache, np.float32)
    store.adopt(cache.with_suffix(".parquet"), "embedding")
    file_of = dict(zip(table["sha256"], table["file"]))
    features, _ = store.values(list(table["sha256"]),
                               lambda todo: _features(spec, [Path(file_of[h]) for h in todo], batch_size))
    return features


def content_scores(spec: BackboneSpec, train: pd.DataFrame, test: pd.DataFrame, cache: Path) -> np.ndarray | None:
    """P(AI) on `test` from a probe fitted on `train`'s reduced images; None when train has one class."""
    y = train["label"].to_numpy()
    if y.min() == y.max():
        return None
    # one pass over the cache (and at most one backbone) for both splits
    features = content_features(spec, pd.concat([train[["file", "sha256"]], test[["file", "sha256"]]]), cache)
    probe, _ = fit_selected(features[:len(train)], y, group_column(train).to_numpy())  # as the probe is fitted
    return probe.predict_proba(features[len(train):])[:, 1]


def verdict(auc: float | None) -> str:
    if auc is None:
        return "not enough data for the content baseline"
    if auc <= CONTENT_LIMIT:
        return (f"little content shortcut: with the generator traces removed, the subject alone ranks at "
                f"{auc:.2f} (at most {CONTENT_LIMIT})")
    return (f"THE CLASSES DIFFER IN CONTENT: the subject alone, every generator trace removed, ranks at {auc:.2f}; "
            "part of what the models separate is what the pictures show, not how they were made")


def describe(spec: BackboneSpec) -> str:
    return (f"images reduced to {REDUCED_SIDE} px and enlarged again; frozen {spec.describe()} features; "
            "standardized, class-balanced logistic regression fitted on train; in-distribution test")


def roc_auc_of(test: pd.DataFrame, scores: np.ndarray | None) -> float | None:
    return None if scores is None else roc_auc(test["label"].to_numpy(), scores)
