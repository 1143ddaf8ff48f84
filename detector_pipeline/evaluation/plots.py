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


def live_series(entries: list[dict]) -> bytes:
    """The promoted model's ROC-AUC on each label batch, in the order they arrived, with 95 % intervals;
    each model's own test ROC-AUC (and interval) as a band: batches below it show the model aging."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    versions = list(dict.fromkeys(e["model_version"] for e in entries))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, entry in enumerate(entries):
        colour = colours[versions.index(entry["model_version"]) % len(colours)]
        value, ci = entry["batch_roc_auc"], entry.get("batch_roc_auc_ci95")
        if value is None:
            continue
        # a percentile interval need not hold its point estimate; error bars can't be negative
        error = [[max(0.0, value - ci[0])], [max(0.0, ci[1] - value)]] if ci else None
        ax.errorbar([i], [value], yerr=error, fmt="o", color=colour, capsize=4,
                    mfc="white" if entry.get("worse_beyond_noise") else colour)
    for version in versions:
        colour = colours[versions.index(version) % len(colours)]
        mine = [i for i, e in enumerate(entries) if e["model_version"] == version]
        test = entries[mine[0]]
        if test.get("test_roc_auc") is None:
            continue
        span = [min(mine) - 0.4, max(mine) + 0.4]
        ax.plot(span, [test["test_roc_auc"]] * 2, color=colour, ls="--", label=f"{version[:8]} test ROC-AUC")
        if test.get("test_roc_auc_ci95"):
            ax.fill_between(span, *test["test_roc_auc_ci95"], color=colour, alpha=0.12)
    ax.set_xticks(range(len(entries)), [e["batch"][:22] for e in entries], rotation=20, ha="right", fontsize=8)
    ax.set(ylim=(0.3, 1.0), ylabel="ROC-AUC vs teacher",
           title="Promoted model on each new label batch, before training on it (hollow: worse beyond noise)")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8, loc="lower left")
    return figure_png(fig)


def drift_histogram(reference: np.ndarray, feed: np.ndarray, threshold: float) -> bytes:
    """The feed's P(AI) against the test split's, as densities on one axis, with the threshold."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    bins = np.linspace(0, 1, 41)
    ax.hist(reference, bins=bins, density=True, alpha=0.5, color="#4c72b0", label=f"test split ({len(reference)})")
    ax.hist(feed, bins=bins, density=True, alpha=0.5, color="#dd8452", label=f"feed ({len(feed)})")
    ax.axvline(threshold, color="#c44e52", ls="--", label=f"threshold {threshold:.3f}")
    ax.set(xlabel="detector P(AI)", ylabel="density", title="Feed scores against the promoted model's test split")
    ax.legend(fontsize=8)
    return figure_png(fig)


def training_history(history: list[dict]) -> bytes:
    """Per epoch: the training loss (left axis) and the validation ROC-AUC (right axis)."""
    epochs = [h["epoch"] for h in history]
    fig, loss_axis = plt.subplots(figsize=(6, 3.2))
    loss_axis.plot(epochs, [h.get("train_loss") for h in history], "o-", color="#4c72b0", label="train loss")
    loss_axis.set(xlabel="epoch", ylabel="train loss")
    loss_axis.set_xticks(epochs)
    auc_axis = loss_axis.twinx()
    val = [(e, h["val_roc_auc"]) for e, h in zip(epochs, history) if h.get("val_roc_auc") is not None]
    if val:
        auc_axis.plot(*zip(*val), "s--", color="#c44e52", label="validation ROC-AUC")
    auc_axis.set_ylabel("validation ROC-AUC")
    lines = loss_axis.get_legend_handles_labels()[0] + auc_axis.get_legend_handles_labels()[0]
    loss_axis.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="upper right")
    return figure_png(fig)
