"""What the review assets do: validate a verdict file against the images the pipeline knows, score
the judged images for the regression gate, and shadow-score a challenger on the champion's feed."""

from pathlib import Path

import numpy as np
import pandas as pd

from detector_pipeline.config.profiles import Profile
from detector_pipeline.data.splits import group_column, rows_in
from detector_pipeline.errors import ArtifactError
from detector_pipeline.evaluation.thresholds import threshold_for_precision
from detector_pipeline.registry.pointer import model_folder, read_promoted_model, relative_folder
from detector_pipeline.registry.records import ModelRecord
from detector_pipeline.review import regression, shadow, verdicts
from detector_pipeline.tasks.promotion import detector_scores, validation_scores

FEED_SCORES = "feed_scores.parquet"


def feed_scores_file(data_dir: Path, version: str) -> Path:
    """Where feed_scores writes the feed's scores by one model version."""
    return data_dir / "scores" / version / FEED_SCORES


def known_images(labels: pd.DataFrame, data_dir: Path) -> pd.DataFrame:
    """The images a verdict may name: those of every label batch and of every scored feed (sha256,
    file relative to the data folder where it lies inside)."""
    frames = [pd.DataFrame({"sha256": labels["sha256"], "file": [relative_folder(data_dir, Path(f)) for f in labels["file"]]})]
    for path in sorted((data_dir / "scores").glob(f"*/{FEED_SCORES}")):
        try:
            feed = pd.read_parquet(path, columns=["path", "sha256"]).dropna()
        except Exception:  # noqa: BLE001 (a feed file being rewritten names no image this time)
            continue
        frames.append(pd.DataFrame({"sha256": feed["sha256"], "file": [relative_folder(data_dir, Path(p)) for p in feed["path"]]}))
    return pd.concat(frames, ignore_index=True).drop_duplicates("sha256")


def validate_verdict_file(path: Path, known: pd.DataFrame, data_dir: Path) -> verdicts.ValidatedVerdicts:
    default = pd.Timestamp(path.stat().st_mtime, unit="s", tz="UTC")
    return verdicts.validate_verdicts(verdicts.read_verdict_file(path), known, data_dir, path.name, default)


def _scores(folder: Path, rows: pd.DataFrame, profile: Profile, data_dir: Path) -> np.ndarray:
    return detector_scores(folder, rows["sha256"], [data_dir / f for f in rows["file"]], profile, data_dir)


def candidate_threshold(labels: pd.DataFrame, candidate: ModelRecord, profile: Profile, data_dir: Path,
                        target_precision: float) -> float:
    """The threshold the evaluation report will choose for the candidate: the same rule on validation."""
    val = rows_in(labels, "val")
    scores = validation_scores(labels, model_folder(data_dir, candidate.folder), profile, data_dir)
    return threshold_for_precision(val["label"].to_numpy(), scores, target_precision)["threshold"]


def regression_on_verdicts(labels: pd.DataFrame, all_verdicts: pd.DataFrame, candidate: ModelRecord,
                           profile: Profile, data_dir: Path, target_precision: float) -> regression.RegressionDecision:
    rows = regression.judged(all_verdicts)
    if rows.empty:
        return regression.no_verdicts()
    groups = rows["sha256"].map(dict(zip(labels["sha256"], group_column(labels)))).fillna(rows["sha256"]).to_numpy()
    threshold = candidate_threshold(labels, candidate, profile, data_dir, target_precision)
    scores = _scores(model_folder(data_dir, candidate.folder), rows, profile, data_dir)
    incumbent, incumbent_scores = read_promoted_model(data_dir), None
    if incumbent is not None and incumbent.version == candidate.version:
        incumbent = None  # the candidate is already promoted: nothing to be worse than
    if incumbent is not None:
        try:
            incumbent_scores = _scores(model_folder(data_dir, incumbent.folder), rows, profile, data_dir)
        except ArtifactError:  # as the validation gate: a promoted model that can't score protects nothing
            incumbent = None
    return regression.compare_on_verdicts(rows, scores, threshold, incumbent_scores,
                                          incumbent.threshold if incumbent else None,
                                          incumbent.version if incumbent else None, groups)


def shadow_compare(labels: pd.DataFrame | None, challenger: ModelRecord, challenger_threshold: float, profile: Profile,
                   data_dir: Path) -> shadow.ShadowComparison:
    """The challenger scores the images of the champion's latest feed_scores; both decide at their own
    operating thresholds. Nothing to compare with: no champion, the challenger is the champion, or the
    champion has not scored a feed yet."""
    try:
        champion = read_promoted_model(data_dir)
    except ArtifactError as exc:  # a pointer being repaired (promote --force) has no champion to compare with
        return shadow.not_compared(challenger.version, None, f"the promoted model can't be read ({exc})")
    if champion is None:
        return shadow.not_compared(challenger.version, None, "no champion promoted yet, so no decision can change")
    if champion.version == challenger.version:
        return shadow.not_compared(challenger.version, champion.version, "the challenger is the promoted model")
    feed_file = feed_scores_file(data_dir, champion.version)
    if not feed_file.is_file():
        return shadow.not_compared(challenger.version, champion.version,
                                   f"champion {champion.version} has not scored a feed yet ({feed_file} is missing): "
                                   "materialize feed_scores (job `score_feed`)")
    feed = pd.read_parquet(feed_file, columns=["path", "sha256", "p_ai"]).dropna().reset_index(drop=True)
    rows = pd.DataFrame({"sha256": feed["sha256"], "file": feed["path"]})
    p_challenger = _scores(model_folder(data_dir, challenger.folder), rows, profile, data_dir)
    val_champion = val_challenger = np.zeros(0)  # no labels (promote --force): no prediction from validation
    if labels is not None:
        try:
            val_champion = validation_scores(labels, model_folder(data_dir, champion.folder), profile, data_dir)
        except ArtifactError:
            val_champion = np.zeros(0)
        val_challenger = validation_scores(labels, model_folder(data_dir, challenger.folder), profile, data_dir)
    if len(val_champion) != len(val_challenger):
        val_champion = val_challenger = np.zeros(0)
    return shadow.compare(challenger.version, champion.version, feed["path"].tolist(), feed["sha256"].tolist(),
                          feed["p_ai"].to_numpy(float), champion.threshold, p_challenger, challenger_threshold,
                          val_champion >= champion.threshold, val_challenger >= challenger_threshold)
