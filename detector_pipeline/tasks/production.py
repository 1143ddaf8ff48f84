"""The promoted model in production: each new label batch scored before any retrain uses it
(batch_evaluation), its review queue, and the feed's drift against the model's test split.

Files, all under the data folder:
- `models/detector/<version>/reference_scores.parquet`: the model's scores on its in-distribution test
  split, and `trained_on.parquet`: the images of its train and validation splits (both written by
  evaluation_report);
- `production/<batch>/<version>/scores.parquet`, `evaluation.json`, `review_queue.parquet`,
  `contact_sheet.png`;
- `production/live.jsonl`: one line per batch evaluation, the series the UI plots and `models` shows.
"""

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from detector_pipeline.config.profiles import Profile
from detector_pipeline.data.splits import group_column, image_files
from detector_pipeline.errors import ArtifactError
from detector_pipeline.evaluation import disagreements, drift, live
from detector_pipeline.evaluation.score_cache import cached_scores
from detector_pipeline.evaluation.thresholds import decide
from detector_pipeline.registry import live_figures
from detector_pipeline.registry.artifacts import write_bytes_atomic, write_json_atomic
from detector_pipeline.registry.pointer import model_folder, read_promoted, relative_folder
from detector_pipeline.tasks.models import detector_scorer

REFERENCE_SCORES = "reference_scores.parquet"
TRAINED_ON = "trained_on.parquet"
NO_MODEL = ("no detector was promoted when this batch arrived, so there is no live model to measure: the batch "
            "goes into training the first one, and batches after that promotion are measured")
DESCRIBING = ["image_path", "family", "generator", "source_group", "source_package", "is_ai"]


def write_reference(folder: Path, test: pd.DataFrame, test_scores: np.ndarray, trained: pd.DataFrame,
                    data_dir: Path) -> None:
    """What the live figures and the drift check compare with: the test split's scores, and which
    images the model learnt from (a later batch that labels them again is not a live measurement)."""
    reference = _described(test, data_dir).assign(label=test["label"].to_numpy(), p_ai=np.asarray(test_scores, float))
    write_bytes_atomic(folder / REFERENCE_SCORES, reference.to_parquet(index=False))
    write_bytes_atomic(folder / TRAINED_ON, trained[["sha256"]].to_parquet(index=False))


def promoted_now(data_dir: Path) -> tuple[dict | None, str | None]:
    """The promoted record, or None and why (nothing promoted, or a pointer that can't be read)."""
    try:
        record = read_promoted(data_dir)
    except ArtifactError as exc:
        return None, f"the promotion pointer can't be read ({exc})"
    return (record, None) if record else (None, NO_MODEL)


def _model_card(folder: Path) -> dict:
    path = folder / "model_card.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _test_families(data_dir: Path, card: dict) -> dict[str, dict]:
    """The model's ROC-AUC per generator family on its own test split (its evaluation report), with
    whether the family was held out of its training."""
    path = data_dir / "reports" / str(card.get("report")) / "report.json"
    if not card.get("report") or not path.is_file():
        return {}
    rows = json.loads(path.read_text()).get("slices", {}).get("family_vs_real", {}).get("detector", [])
    return {r["family"]: {"roc_auc": r["roc_auc"], "held_out_of_training": bool(r.get("held_out_of_training"))}
            for r in rows if r.get("roc_auc") is not None}


def _unseen_rows(folder: Path, batch: pd.DataFrame) -> tuple[pd.DataFrame, int | None]:
    """The batch without images the model trained or validated on; None when that is not recorded."""
    path = folder / TRAINED_ON
    if not path.is_file():
        return batch, None
    trained = set(pd.read_parquet(path)["sha256"])
    seen = batch["sha256"].isin(trained)
    return batch[~seen], int(seen.sum())


def _not_measured(batch_name: str, version: str | None, status: str, why: str) -> dict:
    return {"batch": batch_name, "model_version": version, "status": status, "why": why}


def evaluate_batch(batch_name: str, batch: pd.DataFrame, promoted: dict, data_dir: Path, profile: Profile) -> dict:
    """The promoted model's live figures on one label batch, and the comparison with its test split;
    or, with `status` and `why`, the reason there are none (an empty batch, a batch the model trained
    on, a promoted model that can't be loaded)."""
    folder = model_folder(data_dir, promoted["folder"])
    version, threshold = promoted["version"], promoted["threshold"]
    if batch.empty:
        return _not_measured(batch_name, version, "empty batch", "no row of this batch passed validation")
    batch_version = str(batch["batch_version"].iloc[0])
    card = _model_card(folder)
    if {b["batch"]: b["data_version"] for b in card.get("batches", [])}.get(batch_name) == batch_version:
        return _not_measured(batch_name, version, "trained on it",
                             f"detector {version} trained on this very batch: its figures would not be live")
    rows, already_seen = _unseen_rows(folder, batch)
    if rows.empty:
        return _not_measured(batch_name, version, "trained on it",
                             f"detector {version} trained or validated on every image of this batch")
    try:
        scorer = detector_scorer(folder, profile)
    except ArtifactError as exc:  # as the gate does: a model that can't score the feed measures nothing
        return _not_measured(batch_name, version, "promoted model unusable", str(exc))
    scores = cached_scores(data_dir / "cache/scores" / f"detector-{version}.parquet", rows["sha256"],
                           image_files(rows), scorer.score)
    figures = live.batch_figures(rows, scores, threshold, group_column(rows).to_numpy())
    verdict = live.aging_verdict(figures, (card.get("metrics") or {}).get("test") or {}, _test_families(data_dir, card))
    out = data_dir / "production" / batch_name / version
    write_bytes_atomic(out / "scores.parquet", _scored_table(rows, scores, threshold, data_dir).to_parquet(index=False))
    result = {"batch": batch_name, "batch_version": batch_version, "model_version": version,
              "model_folder": promoted["folder"], "promoted_at": promoted.get("promoted_at"), "threshold": threshold,
              "status": "measured", "n": int(len(rows)), "already_trained_on": already_seen,
              "evaluated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "figures": figures, "aging": verdict, "scores_file": relative_folder(data_dir, out / "scores.parquet")}
    write_json_atomic(out / "evaluation.json", result)
    live_figures.append(data_dir, result)
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


def review_queue(evaluation: dict, data_dir: Path, k: int) -> dict:
    """The top-k disagreements of a measured batch: parquet and contact sheet beside its scores."""
    scores_file = data_dir / evaluation["scores_file"]
    scored = pd.read_parquet(scores_file)
    queue = disagreements.review_queue(scored, evaluation["threshold"], k)
    queue_file, sheet_file = scores_file.with_name("review_queue.parquet"), scores_file.with_name("contact_sheet.png")
    write_bytes_atomic(queue_file, queue.to_parquet(index=False))
    sheet = disagreements.contact_sheet(queue, [data_dir / f for f in queue["file"]])
    write_bytes_atomic(sheet_file, sheet)
    return {"batch": evaluation["batch"], "model_version": evaluation["model_version"], "k": k, "rows": int(len(queue)),
            "queue_file": relative_folder(data_dir, queue_file), "contact_sheet": relative_folder(data_dir, sheet_file),
            "queue": queue, "sheet_png": sheet}


def feed_drift(feed_scores_file: Path, promoted: dict, data_dir: Path, review_band: float = 0.0) -> dict:
    """The feed's scores against the promoted model's test split (reference_scores.parquet)."""
    reference_file = model_folder(data_dir, promoted["folder"]) / REFERENCE_SCORES
    if not reference_file.is_file():
        return {"drifted": False, "why": f"{reference_file} is missing: materialize evaluation_report for detector "
                                         f"{promoted['version']} (job `report`) to have a test split to compare with"}
    feed = pd.read_parquet(feed_scores_file, columns=["p_ai"])["p_ai"].dropna().to_numpy(float)
    reference = pd.read_parquet(reference_file, columns=["p_ai"])["p_ai"].to_numpy(float)
    verdict = drift.drift_verdict(reference, feed, promoted["threshold"], review_band)
    return {**verdict, "reference": reference, "feed": feed}


PARITY_IMAGES = 64


def parity_images(folder: Path, data_dir: Path, n: int = PARITY_IMAGES) -> list[Path] | None:
    """The first n images of the model's test split, where its evaluation recorded them."""
    reference_file = folder / REFERENCE_SCORES
    if not reference_file.is_file():
        return None
    return [data_dir / f for f in pd.read_parquet(reference_file, columns=["file"])["file"][:n]]


def export_promoted(promoted: dict, data_dir: Path) -> dict:
    """The promoted version's ONNX export, its parity measured on the first 64 images of its test split."""
    from detector_pipeline.export.onnx_export import export_dir_for, export_onnx

    folder = model_folder(data_dir, promoted["folder"])
    files = parity_images(folder, data_dir)
    if files is None:
        raise ArtifactError(f"{folder / REFERENCE_SCORES} is missing, so there are no test images to check the "
                            f"export on: materialize evaluation_report for detector {promoted['version']} (job `report`)")
    result = export_onnx(folder, export_dir_for(folder), files, threshold=promoted["threshold"])
    return {**result, "onnx": relative_folder(data_dir, Path(result["onnx"])),
            "preprocessing": relative_folder(data_dir, Path(result["preprocessing"]))}
