"""The promoted model in production: each new label batch scored before any retrain uses it
(batch_evaluation), its review queue, and the feed's drift against the model's test split.

What it reads of the promoted model's evaluation comes from the report the promotion names
(`registry/reports.py`). Files, all under the data folder:
- `production/<batch>/<version>/scores.parquet`, `evaluation.json`, `review_queue.parquet`,
  `contact_sheet.png`;
- `production/live.jsonl`: one line per batch evaluation, the series the UI plots and `models` shows.
"""

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from detector_pipeline.config.profiles import Profile
from detector_pipeline.data.splits import group_column, image_files
from detector_pipeline.errors import ArtifactError
from detector_pipeline.evaluation import disagreements, drift, live
from detector_pipeline.evaluation.score_cache import cached_scores, scores_cache
from detector_pipeline.evaluation.test_sets import IN_DISTRIBUTION
from detector_pipeline.evaluation.thresholds import decide
from detector_pipeline.evaluation.model_card import model_card
from detector_pipeline.registry import live_figures, reports
from detector_pipeline.registry.artifacts import write_bytes_atomic, write_json_atomic
from detector_pipeline.registry.pointer import model_folder, relative_folder
from detector_pipeline.registry.records import PromotedModel
from detector_pipeline.tasks.models import detector_scorer

NO_MODEL = ("no detector was promoted when this batch arrived, so there is no live model to measure: the batch "
            "goes into training the first one, and batches after that promotion are measured")
DESCRIBING = ["image_path", "family", "generator", "source_group", "source_package", "is_ai"]


def reference_tables(test: pd.DataFrame, test_scores: np.ndarray, trained: pd.DataFrame,
                     data_dir: Path) -> dict[str, bytes]:
    """What the live figures, the drift check and the export's parity compare with, for the report's
    folder: the test split's scores, and which images the model learnt from."""
    reference = _described(test, data_dir).assign(label=test["label"].to_numpy(), p_ai=np.asarray(test_scores, float))
    return {reports.REFERENCE_SCORES: reference.to_parquet(index=False),
            reports.TRAINED_ON: trained[["sha256"]].to_parquet(index=False)}


@dataclass(frozen=True)
class BatchEvaluation:
    """batch_evaluation's value: the promoted model's live figures on one label batch (status
    `measured`), or the status and why there are none."""

    batch: str
    model_version: str | None
    status: str  # measured, empty batch, trained on it, promoted model unusable, no promoted model
    why: str | None = None  # what a status other than `measured` means here
    batch_version: str | None = None
    model_folder: str | None = None
    promoted_at: str | None = None
    threshold: float | None = None
    n: int | None = None  # images measured: the batch less those the model learnt from
    already_trained_on: int | None = None  # None: the model's report does not record its training images
    evaluated_at: str | None = None
    figures: dict | None = None  # evaluation.live.batch_figures
    aging: dict | None = None  # evaluation.live.aging_verdict
    scores_file: str | None = None  # relative to the data folder

    @property
    def measured(self) -> bool:
        return self.status == "measured"

    def record(self) -> dict:
        return asdict(self)


def _test_figures(report: dict | None) -> tuple[dict, dict[str, dict]]:
    """The model's in-distribution test ROC-AUC with its interval, and its ROC-AUC per generator family
    (with whether the family was held out of its training), as its evaluation report gave them."""
    if report is None:
        return {}, {}
    rows = (report.get("slices") or {}).get("family_vs_real", {}).get("detector", [])
    families = {r["family"]: {"roc_auc": r["roc_auc"], "held_out_of_training": bool(r.get("held_out_of_training"))}
                for r in rows if r.get("roc_auc") is not None}
    return report["detector"].get(IN_DISTRIBUTION) or {}, families


def _unseen_rows(data_dir: Path, report_id: str | None, batch: pd.DataFrame) -> tuple[pd.DataFrame, int | None]:
    """The batch without images the model trained or validated on; None when that is not recorded."""
    trained = reports.trained_on(data_dir, report_id)
    if trained is None:
        return batch, None
    seen = batch["sha256"].isin(trained)
    return batch[~seen], int(seen.sum())


def _not_measured(batch_name: str, version: str | None, status: str, why: str) -> BatchEvaluation:
    return BatchEvaluation(batch=batch_name, model_version=version, status=status, why=why)


def evaluate_batch(batch_name: str, batch: pd.DataFrame, promoted: PromotedModel | None, data_dir: Path,
                   profile: Profile) -> BatchEvaluation:
    """The promoted model's live figures on one label batch, and the comparison with its test split;
    or, with `status` and `why`, the reason there are none (an empty batch, a batch the model trained
    on, a promoted model that can't be loaded)."""
    if promoted is None:
        return _not_measured(batch_name, None, "no promoted model", NO_MODEL)
    folder = model_folder(data_dir, promoted.folder)
    version, threshold = promoted.version, promoted.threshold
    if batch.empty:
        return _not_measured(batch_name, version, "empty batch", "no row of this batch passed validation")
    batch_version = str(batch["batch_version"].iloc[0])
    card = model_card(folder)
    if {b["batch"]: b["data_version"] for b in card.get("batches", [])}.get(batch_name) == batch_version:
        return _not_measured(batch_name, version, "trained on it",
                             f"detector {version} trained on this very batch: its figures would not be live")
    rows, already_seen = _unseen_rows(data_dir, promoted.report_id, batch)
    if rows.empty:
        return _not_measured(batch_name, version, "trained on it",
                             f"detector {version} trained or validated on every image of this batch")
    try:
        scorer = detector_scorer(folder, profile)
    except ArtifactError as exc:  # as the gate does: a model that can't score the feed measures nothing
        return _not_measured(batch_name, version, "promoted model unusable", str(exc))
    scores = cached_scores(scores_cache(data_dir / "cache/scores", f"detector-{version}"), rows["sha256"],
                           image_files(rows), scorer.score)
    figures = live.batch_figures(rows, scores, threshold, group_column(rows).to_numpy())
    verdict = live.aging_verdict(figures, *_test_figures(reports.read_report(data_dir, promoted.report_id)))
    out = data_dir / "production" / batch_name / version
    write_bytes_atomic(out / "scores.parquet", _scored_table(rows, scores, threshold, data_dir).to_parquet(index=False))
    result = BatchEvaluation(
        batch=batch_name, batch_version=batch_version, model_version=version, model_folder=promoted.folder,
        promoted_at=promoted.promoted_at, threshold=threshold, status="measured", n=int(len(rows)),
        already_trained_on=already_seen, evaluated_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        figures=figures, aging=verdict, scores_file=relative_folder(data_dir, out / "scores.parquet"))
    write_json_atomic(out / "evaluation.json", result.record())
    live_figures.append(data_dir, result.record())
    return result


def _described(rows: pd.DataFrame, data_dir: Path) -> pd.DataFrame:
    """What says which image a row is: its describing columns, content hash, and file relative to the
    data folder (absolute only when it lies outside it)."""
    columns = [c for c in DESCRIBING if c in rows.columns]
    return rows[columns].assign(sha256=rows["sha256"].to_numpy(),
                                file=[relative_folder(data_dir, Path(f)) for f in rows["file"]])


def _scored_table(rows: pd.DataFrame, scores: np.ndarray, threshold: float, data_dir: Path) -> pd.DataFrame:
    return _described(rows, data_dir).assign(ai_score=rows["ai_score"].to_numpy(), p_ai=scores,
                                             decision=decide(scores, threshold))


def review_queue(evaluation: BatchEvaluation, data_dir: Path, k: int) -> dict:
    """The top-k disagreements of a measured batch: parquet and contact sheet beside its scores."""
    scores_file = data_dir / evaluation.scores_file
    scored = pd.read_parquet(scores_file)
    queue = disagreements.review_queue(scored, evaluation.threshold, k)
    queue_file, sheet_file = scores_file.with_name("review_queue.parquet"), scores_file.with_name("contact_sheet.png")
    write_bytes_atomic(queue_file, queue.to_parquet(index=False))
    sheet = disagreements.contact_sheet(queue, [data_dir / f for f in queue["file"]])
    write_bytes_atomic(sheet_file, sheet)
    return {"batch": evaluation.batch, "model_version": evaluation.model_version, "k": k, "rows": int(len(queue)),
            "queue_file": relative_folder(data_dir, queue_file), "contact_sheet": relative_folder(data_dir, sheet_file),
            "queue": queue, "sheet_png": sheet}


def feed_drift(feed_scores_file: Path, promoted: PromotedModel, data_dir: Path, review_band: float = 0.0) -> dict:
    """The feed's scores against the promoted model's test scores (its evaluation report's)."""
    reference = reports.reference_scores(data_dir, promoted.report_id, ["p_ai"])
    if reference is None:
        return {"drifted": False, "why": f"report {promoted.report_id} has no {reports.REFERENCE_SCORES}: materialize "
                                         f"evaluation_report for detector {promoted.version} (job `report`) to have a "
                                         "test split to compare with"}
    feed = pd.read_parquet(feed_scores_file, columns=["p_ai"])["p_ai"].dropna().to_numpy(float)
    reference = reference["p_ai"].to_numpy(float)
    verdict = drift.drift_verdict(reference, feed, promoted.threshold, review_band)
    return {**verdict, "reference": reference, "feed": feed}


PARITY_IMAGES = 64


def parity_images(data_dir: Path, report_id: str | None, n: int = PARITY_IMAGES) -> list[Path] | None:
    """The first n images of the model's test split, as its evaluation report recorded them."""
    reference = reports.reference_scores(data_dir, report_id, ["file"])
    return None if reference is None else [data_dir / f for f in reference["file"][:n]]


def export_promoted(promoted: PromotedModel, data_dir: Path) -> dict:
    """The promoted version's ONNX export, its parity measured on the first 64 images of its test split."""
    from detector_pipeline.export.onnx_export import export_dir_for, export_onnx

    folder = model_folder(data_dir, promoted.folder)
    files = parity_images(data_dir, promoted.report_id)
    if files is None:
        raise ArtifactError(f"report {promoted.report_id} has no {reports.REFERENCE_SCORES}, so there are no test "
                            f"images to check the export on: materialize evaluation_report for detector "
                            f"{promoted.version} (job `report`)")
    result = export_onnx(folder, export_dir_for(folder), files, threshold=promoted.threshold)
    return {**result, "onnx": relative_folder(data_dir, Path(result["onnx"])),
            "preprocessing": relative_folder(data_dir, Path(result["preprocessing"]))}
