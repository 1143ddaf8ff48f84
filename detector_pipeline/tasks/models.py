"""probe_model and detector: fitting the probe, fine-tuning the detector (one process or DDP), saving
both with their records, and scoring with them."""

import hashlib
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors.torch import load_file

from detector_pipeline.config.device import pick_device
from detector_pipeline.config.profiles import Profile
from detector_pipeline.data.splits import SPLITS, group_column, image_files, rows_in
from detector_pipeline.evaluation.metrics import ranking_metrics
from detector_pipeline.models import embeddings, probe
from detector_pipeline.models.backbones import BackboneSpec
from detector_pipeline.models.embeddings import EmbeddingSet
from detector_pipeline.models.scorer import DetectorScorer
from detector_pipeline.registry import artifacts
from detector_pipeline.registry.pointer import model_folder, relative_folder
from detector_pipeline.registry.records import ModelRecord
from detector_pipeline.tasks.labels import labels_version
from detector_pipeline.training import loop
from detector_pipeline.training.saved import save_detector
from detector_pipeline.training.settings import TRAINING_CODE_VERSION, TrainResult, TrainSettings, settings_dict


def fit_probe(labels: pd.DataFrame, embedding_set: EmbeddingSet, data_dir: Path, seed: int = 0) -> ModelRecord:
    """The probe with C chosen by grouped cross-validation on train (never on validation or test);
    the grid, the choice and the train-versus-validation gap go into its config."""
    matrices = {s: embeddings.embedding_matrix(embedding_set.table, rows_in(labels, s)["sha256"]) for s in SPLITS}
    train = rows_in(labels, "train")
    fitted, selection = probe.fit_selected(matrices["train"], train["label"].to_numpy(),
                                           group_column(train).to_numpy(), seed)
    state = probe.probe_state(fitted)
    metrics = {s: ranking_metrics(rows_in(labels, s)["label"], probe.probe_scores(state, matrices[s])) for s in SPLITS}
    train_auc, val_auc = metrics["train"]["roc_auc"], metrics["val"]["roc_auc"]
    config = {"kind": "probe", "backbone": embedding_set.backbone, "backbone_description": embedding_set.description,
              "randomly_initialised": embedding_set.randomly_initialised, "seed": seed,
              "int8_calibration": embedding_set.calibration,
              "labels_version": labels_version(labels), "metrics": metrics,
              "selection": {**selection.as_dict(),
                            "train_minus_val_roc_auc": None if train_auc is None or val_auc is None
                            else train_auc - val_auc}}
    return _save(data_dir, "models", state, config)


RESTART_COPIES = "cache/restart-jpegs"


def training_key(labels: pd.DataFrame, profile: Profile, pos_weight: float | None, native_crops: bool = True,
                 processes: int = 1, recipe_only: bool = False) -> str:
    """What a training is: its labels, backbone, settings and loop; names its checkpoints, and tells an
    ablation whether an earlier run of an arm trained what this one would."""
    settings = TrainSettings.from_profile(profile, pos_weight, native_crops, processes, recipe_only)
    return _training_key(labels, profile.detector, settings)


def _training_key(labels: pd.DataFrame, spec: BackboneSpec, settings: TrainSettings) -> str:
    return hashlib.sha256(f"{labels_version(labels)}|{spec.record()}|{settings_dict(settings)}|"
                          f"{TRAINING_CODE_VERSION}".encode()).hexdigest()[:16]


def train_detector(labels: pd.DataFrame, data_dir: Path, profile: Profile, pos_weight: float | None,
                   native_crops: bool = True, processes: int = 1, log=print, run_command=None,
                   models_subdir: str = "models", recipe_only: bool = False) -> ModelRecord:
    """Fine-tunes `profile.detector` (the profile already holds the run's overrides) and saves it under
    `data_dir/models_subdir` with its preprocessing; checkpoints go to `data_dir/checkpoints`.
    `processes` > 1 trains with DistributedDataParallel under torchrun; `run_command(argv)` starts it
    (the asset passes Dagster Pipes; default: a plain subprocess). `recipe_only`: the article's recipe
    without the profile's training changes."""
    settings = TrainSettings.from_profile(profile, pos_weight, native_crops, processes, recipe_only)
    train, val = rows_in(labels, "train"), rows_in(labels, "val")
    spec = profile.detector
    checkpoint_dir = data_dir / "checkpoints" / _training_key(labels, spec, settings)
    copies = data_dir / RESTART_COPIES  # large JPEGs' restart-marker copies, for region decoding
    if settings.processes > 1:
        result = _train_distributed(spec, settings, train, val, checkpoint_dir, copies, run_command or _run_checked)
    else:
        result = loop.train_detector(spec, image_files(train), train["ai_score"].to_numpy(), image_files(val),
                                     val["label"].to_numpy(), settings, pick_device(profile.device),
                                     checkpoint_dir=checkpoint_dir, log=log, restart_copies=copies)
    version, folder, config = save_detector(data_dir / models_subdir, result.state, spec, settings,
                                            labels_version(labels), result)
    return ModelRecord.saved(version, relative_folder(data_dir, folder), config)


def _save(data_dir: Path, models_subdir: str, state: dict, config: dict) -> ModelRecord:
    version, folder = artifacts.save_model(data_dir / models_subdir, config["kind"], state, config)
    return ModelRecord.saved(version, relative_folder(data_dir, folder), config)


def _run_checked(argv: list[str]) -> None:
    subprocess.run(argv, check=True)


def _train_distributed(spec: BackboneSpec, settings: TrainSettings, train: pd.DataFrame, val: pd.DataFrame,
                       checkpoint_dir: Path, copies: Path, run_command) -> TrainResult:
    from detector_pipeline.training import ddp

    with tempfile.TemporaryDirectory(prefix="ddp-") as tmp:
        folder = Path(tmp)
        job = ddp.write_job(folder, spec, settings, image_files(train), train["ai_score"].to_numpy(),
                            image_files(val), val["label"].to_numpy(), checkpoint_dir, copies)
        run_command(ddp.launch_command(job, settings.processes))
        digests = {json.loads(p.read_text())["final_weights_digest"] for p in folder.glob("rank*.json")}
        if len(digests) != 1:
            raise RuntimeError(f"the {settings.processes} DDP replicas ended with different weights: {digests}")
        record = json.loads((folder / ddp.RECORD_FILE).read_text())
        state = load_file(str(folder / ddp.STATE_FILE))
    return TrainResult(state, record["best_epoch"], record["best_val_roc_auc"], record["history"],
                       record["resumed_from_epoch"])


def detector_scorer(folder: Path, profile: Profile) -> DetectorScorer:
    """A saved detector, loaded (and its files verified) once, scoring with the profile's device,
    batch size and loader workers."""
    return DetectorScorer.load(folder, "torch", pick_device(profile.device), profile.infer_batch_size,
                               profile.num_workers)


def probe_scores_for(probe_model: ModelRecord, embedding_set: EmbeddingSet, sha256: pd.Series,
                     data_dir: Path) -> np.ndarray:
    state, _ = artifacts.load_model_files(model_folder(data_dir, probe_model.folder))
    return probe.probe_scores(state, embeddings.embedding_matrix(embedding_set.table, sha256))


def model_card_for(detector: ModelRecord, labels: pd.DataFrame, run_id: str, git_commit: str | None,
                   parent_version: str | None) -> dict:
    from detector_pipeline.evaluation.model_card import batches_summary

    return {
        "kind": "detector", "version": detector.version, "backbone": detector.backbone,
        "backbone_description": detector.backbone_description, "randomly_initialised": detector.randomly_initialised,
        "labels_version": detector.labels_version, "batches": batches_summary(labels),
        "counts": {s: int((labels["split"] == s).sum()) for s in SPLITS},
        "split": {"by": "source_group" if "source_group" in labels.columns else "image",
                  "seed": detector.settings["seed"]},
        "settings": detector.settings, "preprocessing": detector.preprocessing, "seed": detector.settings["seed"],
        "metrics": {"val_roc_auc": detector.best_val_roc_auc, "best_epoch": detector.best_epoch,
                    "history": detector.history},
        "run_id": run_id, "git_commit": git_commit, "parent_version": parent_version,
    }


def write_detector_card(data_dir: Path, detector: ModelRecord, labels: pd.DataFrame, run_id: str,
                        git_commit: str | None) -> dict:
    """The model card beside the weights; its parent is the model promoted while it trained (none
    when the pointer can't be read: the gate check says why)."""
    from detector_pipeline.errors import ArtifactError
    from detector_pipeline.evaluation.model_card import write_model_card
    from detector_pipeline.registry.pointer import read_promoted

    try:
        promoted = read_promoted(data_dir)
    except ArtifactError:
        promoted = None
    card = model_card_for(detector, labels, run_id, git_commit, promoted["version"] if promoted else None)
    write_model_card(model_folder(data_dir, detector.folder), card)
    return card
