"""Figures as PNG bytes, and as markdown images with a data URI for the Dagster UI."""

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402


def figure_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def markdown_image(png: bytes, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def score_histogram(scores: np.ndarray, threshold: float = 0.5) -> bytes:
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(scores, bins=50, range=(0, 1), color="#4c72b0")
    ax.axvline(0.1, color="grey", ls=":", label="0.1")
    ax.axvline(threshold, color="#c44e52", ls="--", label=f"positive at >= {threshold}")
    ax.set_yscale("log")
    ax.set_xlabel("teacher ai_score")
    ax.set_ylabel("images (log)")
    ax.legend()
    return figure_png(fig)


def roc_pr_curves(y_true: np.ndarray, scores: dict[str, np.ndarray]) -> tuple[bytes, bytes]:
    """One ROC and one PR figure, a curve per model."""
    roc_fig, roc_ax = plt.subplots(figsize=(4.5, 4))
    pr_fig, pr_ax = plt.subplots(figsize=(4.5, 4))
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(y_true, s)
        roc_ax.plot(fpr, tpr, label=name)
        precision, recall, _ = precision_recall_curve(y_true, s)
        pr_ax.plot(recall, precision, label=name)
    roc_ax.plot([0, 1], [0, 1], color="grey", ls=":")
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    pr_ax.axhline(float(np.mean(y_true)), color="grey", ls=":", label="prevalence")
    pr_ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (test)")
    roc_ax.legend(loc="lower right")
    pr_ax.legend(loc="upper right")
    return figure_png(roc_fig), figure_png(pr_fig)


def reliability_diagram(calibration: dict) -> bytes:
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot([0, 1], [0, 1], color="grey", ls=":", label="perfect")
    for key, label in (("reliability_before", "raw"), ("reliability_after", "calibrated")):
        points = calibration.get(key)
        if points:
            ax.plot(points["mean_predicted"], points["fraction_positive"], marker="o", label=label)
    ax.set(xlabel="mean predicted P(AI)", ylabel="fraction positive", title="Reliability (test)")
    ax.legend()
    return figure_png(fig)


def slice_bars(rows: list[dict], key: str) -> bytes:
    fig, ax = plt.subplots(figsize=(6, 3.2))
    names = [r[key] + (" (held out)" if r.get("held_out_of_training") else "") for r in rows]
    values = [r["roc_auc"] if r["roc_auc"] is not None else 0.0 for r in rows]
    ax.barh(names, values, color="#4c72b0")
    ax.axvline(0.5, color="grey", ls=":")
    ax.set(xlim=(0, 1), xlabel="ROC-AUC", title=f"Detector per {key} (test)")
    return figure_png(fig)
