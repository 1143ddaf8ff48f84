"""The detector pipeline as software-defined assets. Wiring only: the work lives in `steps`."""

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from detector_pipeline import label_stats as stats_lib
from detector_pipeline import plots, report, steps
from detector_pipeline.artifacts import write_bytes_atomic
from detector_pipeline.configs import DetectorConfig, EmbeddingsConfig, SplitConfig
from detector_pipeline.resources import PipelineSettings, git_commit

GROUP = "training_chain"


def _table_metadata(frame: pd.DataFrame, limit: int = 50) -> dg.MetadataValue:
    shown = frame.head(limit).astype(str)
    return dg.MetadataValue.md(shown.to_markdown(index=False) if len(shown) else "_none_")


@dg.asset(group_name=GROUP, kinds={"pandas", "parquet"}, code_version="1")
def teacher_labels(context: dg.AssetExecutionContext, config: SplitConfig, settings: PipelineSettings) -> dg.Output:
    """The teacher's AI scores, validated: bad rows quarantined with a reason, a group-wise split."""
    validated = steps.prepare_labels(Path(settings.labels_path), Path(settings.images_root), config.seed,
                                     config.val_fraction, config.test_fraction)
    table, quarantined = validated.accepted, validated.quarantined
    version = steps.labels_version(table)
    quarantine_file = settings.data / "quarantine" / f"{version}.parquet"
    write_bytes_atomic(quarantine_file, quarantined.to_parquet(index=False))
    split_counts = table["split"].value_counts().to_dict()
    return dg.Output(
        table,
        data_version=dg.DataVersion(version),
        metadata={
            "dagster/row_count": len(table),
            "input_rows": validated.n_input,
            "accepted": len(table),
            "quarantined": len(quarantined),
            "quarantine_file": dg.MetadataValue.path(str(quarantine_file)),
            "quarantine": _table_metadata(quarantined),
            "splits": dg.MetadataValue.json({k: int(v) for k, v in split_counts.items()}),
            "labels_path": dg.MetadataValue.path(settings.labels_path),
            "labels_version": version,
        },
    )


@dg.asset_check(asset=teacher_labels, blocking=True)
def no_source_in_two_splits(teacher_labels: pd.DataFrame) -> dg.AssetCheckResult:
    from detector_pipeline.splits import group_column

    per_group = teacher_labels.assign(group=group_column(teacher_labels)).groupby("group")["split"].nunique()
    leaking = per_group[per_group > 1]
    return dg.AssetCheckResult(passed=leaking.empty, metadata={"groups": len(per_group), "leaking_groups": len(leaking)})


@dg.asset(group_name=GROUP, kinds={"python"}, code_version="1")
def label_stats(teacher_labels: pd.DataFrame) -> dg.Output:
    """Share of scores below 0.1 and at or above 0.5, and pos_weight = (1 - p) / p, from the train split."""
    train_scores = teacher_labels.loc[teacher_labels["split"] == "train", "ai_score"].to_numpy()
    result = {"all": stats_lib.label_stats(teacher_labels["ai_score"].to_numpy()),
              "train": stats_lib.label_stats(train_scores)}
    result["pos_weight"] = result["train"]["pos_weight"]
    histogram = plots.score_histogram(teacher_labels["ai_score"].to_numpy())
    return dg.Output(result, metadata={
        "share_below_0_1": result["all"]["share_below_0_1"],
        "share_at_or_above_0_5": result["all"]["share_at_or_above_0_5"],
        "positives": result["all"]["positives"],
        "pos_weight": result["pos_weight"],
        "histogram": dg.MetadataValue.md(plots.markdown_image(histogram, "teacher score histogram")),
    })


@dg.asset(group_name=GROUP, kinds={"pytorch", "parquet"}, code_version="1")
def embeddings(config: EmbeddingsConfig, settings: PipelineSettings, teacher_labels: pd.DataFrame) -> dg.Output:
    """Frozen-backbone embeddings per image, cached by content hash and backbone."""
    profile = settings.resolved_profile()
    result = steps.compute_embeddings(teacher_labels, Path(settings.images_root), settings.data / "cache/embeddings",
                                      profile, config.batch_size)
    return dg.Output(result, metadata={
        "backbone": result.description,
        "randomly_initialised": result.randomly_initialised,
        "computed": result.computed,
        "reused": result.reused,
        "dim": len(result.table["embedding"].iloc[0]) if len(result.table) else 0,
        "dagster/row_count": len(result.table),
    })


def _metrics_metadata(prefix: str, metrics: dict) -> dict:
    return {f"{split}_{name}": metrics[split][name] for split in ("val", "test") for name in ("roc_auc", "pr_auc")
            if metrics[split][name] is not None} | {"prefix": prefix}


@dg.asset(group_name=GROUP, kinds={"scikitlearn", "safetensors"}, code_version="1")
def probe_model(settings: PipelineSettings, teacher_labels: pd.DataFrame, embeddings: steps.EmbeddingSet) -> dg.Output:
    """Standardized, class-balanced logistic regression on the frozen embeddings."""
    result = steps.fit_probe(teacher_labels, embeddings, settings.data / "models", settings.resolved_profile().seed)
    metadata = {k: v for k, v in _metrics_metadata("probe", result["metrics"]).items() if k != "prefix"}
    return dg.Output(result, metadata={"version": result["version"], "backbone": result["backbone_description"],
                                       "folder": dg.MetadataValue.path(result["folder"]), **metadata})


@dg.asset(group_name=GROUP, kinds={"pytorch", "safetensors"}, code_version="1")
def detector(context: dg.AssetExecutionContext, config: DetectorConfig, settings: PipelineSettings,
             teacher_labels: pd.DataFrame, label_stats: dict) -> dg.Output:
    """The backbone fine-tuned end to end on native-resolution crops, soft-label BCE with pos_weight."""
    profile = settings.resolved_profile()
    result = steps.train_detector(
        teacher_labels, Path(settings.images_root), settings.data / "models", settings.data / "checkpoints", profile,
        label_stats["pos_weight"] if config.use_pos_weight else None, log=context.log.info,
        epochs=config.epochs, batch_size=config.batch_size, max_steps_per_epoch=config.max_steps_per_epoch,
        seed=config.seed, native_crops=config.native_crops,
    )
    return dg.Output(result, metadata={
        "version": result["version"], "backbone": result["backbone_description"],
        "randomly_initialised": result["randomly_initialised"],
        "best_epoch": result["best_epoch"], "best_val_roc_auc": result["best_val_roc_auc"],
        "history": dg.MetadataValue.json(result["history"]),
        "folder": dg.MetadataValue.path(result["folder"]),
    })


@dg.asset(group_name=GROUP, kinds={"scikitlearn", "markdown"}, code_version="1")
def evaluation_report(context: dg.AssetExecutionContext, settings: PipelineSettings, teacher_labels: pd.DataFrame,
                      label_stats: dict, embeddings: steps.EmbeddingSet, probe_model: dict, detector: dict) -> dg.Output:
    """ROC-AUC and PR-AUC of probe and detector on the held-out test split; report.md/json on disk."""
    profile = settings.resolved_profile()
    root = Path(settings.images_root)
    probe_scores, detector_scores = {}, {}
    for split in ("train", "val", "test"):
        part = teacher_labels[teacher_labels["split"] == split]
        y = part["label"].to_numpy()
        probe_scores[split] = (y, steps.probe_scores_for(probe_model, embeddings, part["sha256"]))
        detector_scores[split] = (y, steps.detector_scores(detector, [root / p for p in part["image_path"]], profile))
    counts = {s: int((teacher_labels["split"] == s).sum()) for s in ("train", "val", "test")}
    model_version = f"{detector['version']}-{probe_model['version']}"
    result = report.build_report(
        model_version=model_version, label_stats=label_stats["all"], counts=counts,
        probe=steps.model_summary(probe_model, probe_scores), detector=steps.model_summary(detector, detector_scores),
        created_by={"run_id": context.run.run_id, "git_commit": git_commit(), "profile": profile.name},
    )
    y_test = detector_scores["test"][0]
    folder = report.write_report(settings.data / "reports", result,
                                 y_test, {"probe": probe_scores["test"][1], "detector": detector_scores["test"][1]})
    roc_png, pr_png = (folder / "roc.png").read_bytes(), (folder / "pr.png").read_bytes()
    return dg.Output(result, metadata={
        "probe_test_roc_auc": result["probe"]["test"]["roc_auc"],
        "probe_test_pr_auc": result["probe"]["test"]["pr_auc"],
        "detector_test_roc_auc": result["detector"]["test"]["roc_auc"],
        "detector_test_pr_auc": result["detector"]["test"]["pr_auc"],
        "detector_train_test_roc_gap": result["detector"]["train_test_roc_gap"],
        "n_test": result["n_test"],
        "report": dg.MetadataValue.path(str(folder / "report.md")),
        "curves": dg.MetadataValue.md(plots.markdown_image(roc_png, "ROC") + " " + plots.markdown_image(pr_png, "PR")),
        "summary": dg.MetadataValue.md(report.report_markdown(result).split("## Models")[0]),
    })


ASSETS = [teacher_labels, label_stats, embeddings, probe_model, detector, evaluation_report]
CHECKS = [no_source_in_two_splits]
