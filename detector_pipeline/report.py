"""The evaluation report: report.json for tools, report.md (with its figures) for people."""

import os
from pathlib import Path

import numpy as np

from detector_pipeline.artifacts import atomic_path, write_bytes_atomic, write_json_atomic
from detector_pipeline.metrics import ranking_metrics


def split_metrics(y_true: np.ndarray, scores: np.ndarray) -> dict:
    return ranking_metrics(y_true, scores)


def at_threshold(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """Precision, recall, false-positive rate and the confusion matrix at a fixed threshold."""
    from sklearn.metrics import confusion_matrix

    y_true = np.asarray(y_true).astype(int)
    predicted = (np.asarray(scores) >= threshold).astype(int)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y_true, predicted, labels=[0, 1]).ravel())
    return {"precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None,
            "false_positive_rate": fp / (fp + tn) if fp + tn else None,
            "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp}}


def build_report(*, model_version: str, label_stats: dict, counts: dict, probe: dict, detector: dict,
                 operating_point: dict, created_by: dict) -> dict:
    """probe / detector: {"backbone": str, "weights": str, "randomly_initialised": bool, "version": str,
    "train"/"val"/"test": ranking metrics}."""
    gap = None
    if detector["train"]["roc_auc"] is not None and detector["test"]["roc_auc"] is not None:
        gap = detector["train"]["roc_auc"] - detector["test"]["roc_auc"]
    return {
        "model_version": model_version,
        "n_test": counts["test"],
        "counts": counts,
        "label_stats": label_stats,
        "probe": probe,
        "detector": {**detector, "train_test_roc_gap": gap},
        "operating_point": operating_point,
        "positive_definition": "teacher ai_score >= 0.5",
        "created_by": created_by,
    }


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def report_markdown(report: dict) -> str:
    rows = []
    for name in ("probe", "detector"):
        m = report[name]
        for split in ("train", "val", "test"):
            s = m[split]
            rows.append(f"| {name} | {split} | {_fmt(s['roc_auc'])} | {_fmt(s['pr_auc'])} | {s['n']} | {s['positives']} |")
    warnings = [f"- **{n}: {report[n]['backbone']} is RANDOMLY INITIALISED** - its numbers say nothing about "
                "what pretrained weights would do." for n in ("probe", "detector") if report[n]["randomly_initialised"]]
    stats = report["label_stats"]
    return "\n".join([
        f"# Evaluation report - model {report['model_version']}",
        "",
        *warnings,
        "" if warnings else "",
        f"Positives are images with {report['positive_definition']}. Test split: {report['n_test']} images.",
        "",
        "| model | split | ROC-AUC | PR-AUC | n | positives |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Train-vs-test ROC-AUC gap of the detector: {_fmt(report['detector']['train_test_roc_gap'])}.",
        "",
        "## Operating point",
        _operating_point_markdown(report["operating_point"]),
        "",
        "## Models",
        f"- probe: embeddings from **{report['probe']['backbone']}** + standardized, class-balanced logistic regression",
        f"- detector: **{report['detector']['backbone']}** fine-tuned end to end on native-resolution crops",
        "",
        "## Teacher labels",
        f"- {stats['n']} images; {stats['share_below_0_1']:.1%} score below 0.1, "
        f"{stats['share_at_or_above_0_5']:.1%} at or above 0.5; pos_weight {_fmt(stats['pos_weight'])}",
        "",
        "## Curves (test)",
        "![ROC](roc.png) ![PR](pr.png)",
        "",
        f"Made by Dagster run `{report['created_by'].get('run_id')}`, code version "
        f"`{report['created_by'].get('git_commit')}`.",
        "",
    ])


def _operating_point_markdown(op: dict) -> str:
    test = op["test"]
    return (f"Threshold {op['threshold']:.4f} ({op['rule']}; validation precision {_fmt(op['val_precision'])}, "
            f"recall {_fmt(op['val_recall'])}). On test: precision {_fmt(test['precision'])}, recall "
            f"{_fmt(test['recall'])}, false-positive rate {_fmt(test['false_positive_rate'])}, confusion {test['confusion']}.")


def write_report(reports_dir: Path, report: dict, figures: dict[str, bytes]) -> Path:
    """Writes data/reports/<version>/{report.json,report.md,<figure>.png} and points `latest` at it."""
    folder = reports_dir / report["model_version"]
    for name, png in figures.items():
        write_bytes_atomic(folder / f"{name}.png", png)
    write_json_atomic(folder / "report.json", report)
    write_bytes_atomic(folder / "report.md", report_markdown(report).encode())
    point_latest(reports_dir, folder.name)
    return folder


def point_latest(reports_dir: Path, name: str) -> None:
    """Atomically repoint the `latest` symlink."""
    link = reports_dir / "latest"
    with atomic_path(link) as tmp:
        tmp.unlink()
        os.symlink(name, tmp)
