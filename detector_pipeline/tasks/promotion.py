"""The promotion gate: a candidate against the probe and against the promoted model, each on the
validation split and beyond that split's noise."""

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from detector_pipeline.config.profiles import Profile
from detector_pipeline.data.splits import group_column, image_files, rows_in
from detector_pipeline.errors import ArtifactError
from detector_pipeline.evaluation.metrics import roc_auc
from detector_pipeline.evaluation.noise import paired_difference
from detector_pipeline.evaluation.score_cache import cached_scores, scores_cache
from detector_pipeline.models.embeddings import EmbeddingSet
from detector_pipeline.registry.pointer import model_folder, read_promoted
from detector_pipeline.registry.records import ModelRecord
from detector_pipeline.tasks.models import detector_scorer, probe_scores_for


@dataclass(frozen=True)
class GateDecision:
    """One gate check's answer: passed or not, why in words, and the validation figures it rests on
    (None where there was nothing to compare with)."""

    passed: bool
    why: str
    compared_with: str | None = None  # the version of the probe or of the promoted model
    candidate_val_roc_auc: float | None = None
    incumbent_val_roc_auc: float | None = None
    difference: float | None = None  # candidate - incumbent, paired on the same validation images
    difference_95ci: list[float] | None = None
    promoted_model_usable: bool = True  # False: the promoted model can't be loaded, so it counts as none


def validation_scores(labels: pd.DataFrame, folder: Path, profile: Profile, data_dir: Path) -> np.ndarray:
    """A saved detector's scores on the validation split. The model is loaded (and so verified) every
    time; only images it has not scored before are scored (cached by version and image content)."""
    val = rows_in(labels, "val")
    return detector_scores(folder, val["sha256"], image_files(val), profile, data_dir)


def detector_scores(folder: Path, sha256, files, profile: Profile, data_dir: Path) -> np.ndarray:
    """A saved detector's P(AI) on these files, loaded (and so verified) each time, cached by version
    and image content: the gate, the gate on verdicts and shadow scoring read the same cache."""
    scorer = detector_scorer(folder, profile)
    return cached_scores(scores_cache(data_dir / "cache/scores", f"detector-{folder.name}"), sha256, files,
                         scorer.score)


def compare_on_validation(labels: pd.DataFrame, candidate: np.ndarray, incumbent: np.ndarray) -> GateDecision:
    """Two sets of scores for the validation split: the candidate fails only if it is worse beyond the
    split's noise, by the project's one rule (evaluation/noise.py, paired: the same images)."""
    val = rows_in(labels, "val")
    y = val["label"].to_numpy()
    paired = paired_difference(y, candidate, incumbent, group_column(val).to_numpy())
    passed = paired["verdict"] != "refuted"
    return GateDecision(passed=passed, why="not worse beyond validation noise" if passed else "worse beyond validation noise",
                        candidate_val_roc_auc=roc_auc(y, candidate), incumbent_val_roc_auc=roc_auc(y, incumbent),
                        difference=paired["difference"], difference_95ci=paired["ci95"])


def compare_with_probe(labels: pd.DataFrame, detector: ModelRecord, probe_model: ModelRecord,
                       embedding_set: EmbeddingSet, profile: Profile, data_dir: Path) -> GateDecision:
    """Fine-tuning is only worth shipping if it does at least as well as the free baseline."""
    probe = probe_scores_for(probe_model, embedding_set, rows_in(labels, "val")["sha256"], data_dir)
    comparison = compare_on_validation(labels, validation_scores(labels, model_folder(data_dir, detector.folder),
                                                                 profile, data_dir), probe)
    why = ("the detector is not worse than the probe on validation" if comparison.passed else
           "the probe ranks validation images better, beyond the validation noise")
    return replace(comparison, why=why, compared_with=f"probe {probe_model.version}")


def compare_with_promoted(labels: pd.DataFrame, candidate: ModelRecord, profile: Profile,
                          data_dir: Path) -> GateDecision:
    """The gate's comparison of a candidate with the promoted model. A promoted
    model that can't be loaded (files missing or changed, pointer unreadable) counts as none: it can't
    score the feed, so keeping it protects nothing; "why" says so."""
    try:
        promoted = read_promoted(data_dir)
        if promoted is None or promoted["version"] == candidate.version:
            return GateDecision(passed=True, why="no other model is promoted")
        incumbent = validation_scores(labels, model_folder(data_dir, promoted["folder"]), profile, data_dir)
    except ArtifactError as exc:
        return GateDecision(passed=True, why=f"no usable promoted model, so nothing to be worse than: {exc}",
                            promoted_model_usable=False)
    candidate_scores = validation_scores(labels, model_folder(data_dir, candidate.folder), profile, data_dir)
    comparison = compare_on_validation(labels, candidate_scores, incumbent)
    why = ("not worse than the promoted model beyond validation noise" if comparison.passed else
           "worse than the promoted model: the 95 % interval of the AUC difference is below zero")
    return replace(comparison, why=why, compared_with=f"promoted detector {promoted['version']}")
