"""The pipeline's steps as plain functions over tables and files: what each Dagster asset runs.

No Dagster here, so each step runs and is tested on its own (and on a machine without Dagster).
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from detector_pipeline import artifacts, embeddings, probe, splits, training
from detector_pipeline.backbones import BackboneSpec
from detector_pipeline.device import pick_device
from detector_pipeline.label_stats import POSITIVE_THRESHOLD
from detector_pipeline.labels import ValidatedLabels, load_labels
from detector_pipeline.metrics import ranking_metrics
from detector_pipeline.profiles import Profile


@dataclass
class EmbeddingSet:
    backbone: dict  # BackboneSpec.as_dict()
    description: str
    randomly_initialised: bool
    table: pd.DataFrame  # sha256, embedding
    computed: int
    reused: int


def prepare_labels(labels_path: Path, root: Path, seed: int = 0, val: float = 0.15, test: float = 0.15) -> ValidatedLabels:
    """Validated labels with a `split` column and a binary `label` (teacher score >= 0.5)."""
    validated = load_labels(labels_path, root)
    table = validated.accepted
    forced = table["family_held_out"] if "family_held_out" in table.columns else None
    table["split"] = splits.assign_splits(splits.group_column(table), seed, val, test, forced)
    table["label"] = (table["ai_score"] >= POSITIVE_THRESHOLD).astype(int)
    return validated


def labels_version(table: pd.DataFrame) -> str:
    """A data version for a labels table: what images, with what scores, in what split."""
    digest = hashlib.sha256()
    for row in table[["sha256", "ai_score", "split"]].sort_values("sha256").itertuples(index=False):
        digest.update(f"{row.sha256}:{row.ai_score:.6f}:{row.split};".encode())
    return digest.hexdigest()[:16]


def compute_embeddings(labels: pd.DataFrame, root: Path, cache_dir: Path, profile: Profile,
                       batch_size: int | None = None) -> EmbeddingSet:
    spec = profile.embedding
    result = embeddings.embed_with_cache(spec, labels[["image_path", "sha256"]], root, cache_dir,
                                         batch_size or profile.embed_batch_size, pick_device(profile.device),
                                         profile.num_workers, profile.amp)
    return EmbeddingSet(spec.as_dict(), spec.describe(), spec.is_random, result.table, result.computed, result.reused)


def _split(labels: pd.DataFrame, name: str) -> pd.DataFrame:
    return labels[labels["split"] == name]


def fit_probe(labels: pd.DataFrame, embedding_set: EmbeddingSet, models_dir: Path, seed: int = 0) -> dict:
    matrices = {s: embeddings.embedding_matrix(embedding_set.table, _split(labels, s)["sha256"]) for s in splits.SPLITS}
    train = _split(labels, "train")
    fitted = probe.fit_probe(matrices["train"], train["label"], seed)
    state = probe.probe_state(fitted)
    metrics = {s: ranking_metrics(_split(labels, s)["label"], probe.probe_scores(state, matrices[s]))
               for s in splits.SPLITS}
    config = {"kind": "probe", "backbone": embedding_set.backbone, "backbone_description": embedding_set.description,
              "randomly_initialised": embedding_set.randomly_initialised, "seed": seed,
              "labels_version": labels_version(labels), "metrics": metrics}
    version, folder = artifacts.save_model(models_dir, "probe", state, config)
    return {"version": version, "folder": str(folder), **config}


def train_detector(labels: pd.DataFrame, root: Path, models_dir: Path, checkpoints_dir: Path, profile: Profile,
                   pos_weight: float | None, log=print, **overrides) -> dict:
    settings = training.TrainSettings(
        epochs=overrides.get("epochs") or profile.epochs,
        batch_size=overrides.get("batch_size") or profile.train_batch_size,
        lr=profile.lr, weight_decay=profile.weight_decay,
        pos_weight=pos_weight, crop_size=profile.crop_size, num_workers=profile.num_workers,
        seed=overrides.get("seed") if overrides.get("seed") is not None else profile.seed, amp=profile.amp,
        max_steps_per_epoch=overrides.get("max_steps_per_epoch") or profile.max_steps_per_epoch,
        native_crops=overrides.get("native_crops", True),
    )
    train, val = _split(labels, "train"), _split(labels, "val")
    spec = profile.detector
    run_key = hashlib.sha256(f"{labels_version(labels)}|{spec.as_dict()}|{training.settings_dict(settings)}".encode())
    result = training.train_detector(
        spec, [root / p for p in train["image_path"]], train["ai_score"].to_numpy(),
        [root / p for p in val["image_path"]], val["label"].to_numpy(), settings, pick_device(profile.device),
        checkpoint_dir=checkpoints_dir / run_key.hexdigest()[:16], log=log,
    )
    config = {"kind": "detector", "backbone": spec.as_dict(), "backbone_description": spec.describe(),
              "randomly_initialised": spec.is_random, "settings": training.settings_dict(settings),
              "labels_version": labels_version(labels), "best_epoch": result.best_epoch,
              "best_val_roc_auc": result.best_val_roc_auc, "history": result.history,
              "resumed_from_epoch": result.resumed_from_epoch}
    version, folder = artifacts.save_model(models_dir, "detector", result.state, config)
    return {"version": version, "folder": str(folder), **config}


def detector_scores(detector: dict, paths: list[Path], profile: Profile) -> np.ndarray:
    """P(AI) from a saved detector, loaded back through safetensors."""
    from detector_pipeline.backbones import create_backbone

    state, config = artifacts.load_model_files(Path(detector["folder"]))
    spec = BackboneSpec(**{**config["backbone"], "weights": "random"})  # the saved state replaces every weight
    model = create_backbone(spec, num_classes=1)
    model.load_state_dict(state)
    device = pick_device(profile.device)
    settings = training.TrainSettings(**config["settings"])
    return training.predict(model.to(device), paths, settings, device)


def probe_scores_for(probe_model: dict, embedding_set: EmbeddingSet, sha256: pd.Series) -> np.ndarray:
    state, _ = artifacts.load_model_files(Path(probe_model["folder"]))
    return probe.probe_scores(state, embeddings.embedding_matrix(embedding_set.table, sha256))


def model_summary(model: dict, scores: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    return {
        "version": model["version"],
        "backbone": model["backbone_description"],
        "architecture": model["backbone"]["architecture"],
        "weights": model["backbone"]["weights"],
        "weights_file": model["backbone"].get("file"),
        "randomly_initialised": model["randomly_initialised"],
        **{split: ranking_metrics(y, s) for split, (y, s) in scores.items()},
    }
