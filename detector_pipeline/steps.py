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
from detector_pipeline.scoring import load_detector


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


def compute_embeddings(labels: pd.DataFrame, cache_dir: Path, profile: Profile,
                       batch_size: int | None = None, log=None) -> EmbeddingSet:
    spec = profile.embedding
    result = embeddings.embed_with_cache(spec, labels[["file", "sha256"]], cache_dir,
                                         batch_size or profile.embed_batch_size, pick_device(profile.device),
                                         profile.num_workers, profile.amp, log)
    return EmbeddingSet(spec.as_dict(), spec.describe(), spec.is_random, result.table, result.computed, result.reused)


def _split(labels: pd.DataFrame, name: str) -> pd.DataFrame:
    return labels[labels["split"] == name]


def _files(labels: pd.DataFrame) -> list[Path]:
    return [Path(f) for f in labels["file"]]


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


def train_detector(labels: pd.DataFrame, models_dir: Path, checkpoints_dir: Path, profile: Profile,
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
        spec, _files(train), train["ai_score"].to_numpy(),
        _files(val), val["label"].to_numpy(), settings, pick_device(profile.device),
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
    device = pick_device(profile.device)
    model, settings, _ = load_detector(Path(detector["folder"]), device)
    return training.predict(model, paths, settings, device)


def probe_scores_for(probe_model: dict, embedding_set: EmbeddingSet, sha256: pd.Series) -> np.ndarray:
    state, _ = artifacts.load_model_files(Path(probe_model["folder"]))
    return probe.probe_scores(state, embeddings.embedding_matrix(embedding_set.table, sha256))


def model_card_for(detector: dict, labels: pd.DataFrame, run_id: str, git_commit: str | None,
                   parent_version: str | None) -> dict:
    from detector_pipeline.model_card import batches_summary

    return {
        "kind": "detector", "version": detector["version"], "backbone": detector["backbone"],
        "backbone_description": detector["backbone_description"], "randomly_initialised": detector["randomly_initialised"],
        "labels_version": detector["labels_version"], "batches": batches_summary(labels),
        "counts": {s: int((labels["split"] == s).sum()) for s in splits.SPLITS},
        "split": {"by": "source_group" if "source_group" in labels.columns else "image", "seed": 0},
        "settings": detector["settings"], "seed": detector["settings"]["seed"],
        "metrics": {"val_roc_auc": detector["best_val_roc_auc"], "best_epoch": detector["best_epoch"],
                    "history": detector["history"]},
        "run_id": run_id, "git_commit": git_commit, "parent_version": parent_version,
    }


def add_test_metrics_to_card(folder: Path, report: dict) -> None:
    import json

    from detector_pipeline.model_card import write_model_card

    path = folder / "model_card.json"
    if not path.exists():
        return
    card = json.loads(path.read_text())
    card["metrics"]["test"] = report["detector"]["test"]
    card["metrics"]["train"] = report["detector"]["train"]
    card["operating_point"] = report["operating_point"]
    card["report"] = report["model_version"]
    write_model_card(folder, card)


def compare_on_validation(labels: pd.DataFrame, candidate: np.ndarray, incumbent: np.ndarray,
                          n_resamples: int = 300) -> dict:
    """Two sets of scores for the validation split: the candidate fails only if its ROC-AUC is lower and
    the 95 % interval of the difference (source groups resampled, the split's noise) lies below zero."""
    from detector_pipeline.metrics import grouped_bootstrap, interval, roc_auc

    val = _split(labels, "val")
    y = val["label"].to_numpy()

    def difference(index):
        a, b = roc_auc(y[index], candidate[index]), roc_auc(y[index], incumbent[index])
        return None if a is None or b is None else a - b

    ci = interval(grouped_bootstrap(difference, splits.group_column(val).to_numpy(), n_resamples))
    point = difference(np.arange(len(y)))
    worse = point is not None and point < 0 and ci is not None and ci[1] < 0
    return {"candidate_val_roc_auc": roc_auc(y, candidate), "incumbent_val_roc_auc": roc_auc(y, incumbent),
            "difference": point, "difference_95ci": ci, "passed": not worse}


def validation_scores(labels: pd.DataFrame, model: dict, profile: Profile,
                      embedding_set: EmbeddingSet | None = None) -> np.ndarray:
    """A saved detector's (or, with embeddings, a probe's) scores on the validation split."""
    val = _split(labels, "val")
    if model.get("kind") == "probe":
        return probe_scores_for(model, embedding_set, val["sha256"])
    return detector_scores(model, _files(val), profile)


def evaluate(labels: pd.DataFrame, label_stats: dict, embedding_set: EmbeddingSet, probe_model: dict,
             detector: dict, profile: Profile, target_precision: float, created_by: dict) -> tuple[dict, dict]:
    from detector_pipeline import report
    from detector_pipeline.plots import roc_pr_curves
    from detector_pipeline.thresholds import threshold_for_precision

    probe_scores, det_scores = {}, {}
    for split in splits.SPLITS:
        part = _split(labels, split)
        y = part["label"].to_numpy()
        probe_scores[split] = (y, probe_scores_for(probe_model, embedding_set, part["sha256"]))
        det_scores[split] = (y, detector_scores(detector, _files(part), profile))
    operating = threshold_for_precision(*det_scores["val"], target_precision)
    y_test, s_test = det_scores["test"]
    operating["test"] = report.at_threshold(y_test, s_test, operating["threshold"])
    result = report.build_report(
        model_version=f"{detector['version']}-{probe_model['version']}", label_stats=label_stats["all"],
        counts={s: int((labels["split"] == s).sum()) for s in splits.SPLITS},
        probe=model_summary(probe_model, probe_scores), detector=model_summary(detector, det_scores),
        operating_point=operating, created_by=created_by,
    )
    roc_png, pr_png = roc_pr_curves(y_test, {"probe": probe_scores["test"][1], "detector": s_test})
    return result, {"roc": roc_png, "pr": pr_png}


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
