"""probe_model and detector (one process, or torchrun through Dagster Pipes)."""

from pathlib import Path

import dagster as dg
import pandas as pd

from detector_pipeline.data.label_stats import LabelStats
from detector_pipeline.defs import metadata as md
from detector_pipeline.defs.configs import DetectorConfig
from detector_pipeline.defs.partitions import GPU_POOL, GPU_STEP_TAGS, GROUP
from detector_pipeline.defs.resources import PipelineSettings, git_commit
from detector_pipeline.models.embeddings import EmbeddingSet
from detector_pipeline.registry.consistency import require_same_labels
from detector_pipeline.tasks import models
from detector_pipeline.tasks.labels import labels_version
from detector_pipeline.training.settings import TRAINING_CODE_VERSION


def _val_test_metadata(metrics: dict) -> dict:
    return {f"{split}_{name}": md.number(metrics[split][name], f"the {split} split holds one class only")
            for split in ("val", "test") for name in ("roc_auc", "pr_auc")}


def _selection_metadata(selection: dict, metrics: dict) -> dict:
    """The probe's regularisation as chosen: C, the grid with each value's cross-validated ROC-AUC,
    and the train-versus-validation gap it leaves."""
    return {
        "C": selection["chosen_c"],
        "C_chosen_by": selection["by"],
        "C_grid_cv_roc_auc": dg.MetadataValue.md("| C | mean ROC-AUC over folds |\n|---|---|\n" + "\n".join(
            f"| {c:g} | {'n/a' if m is None else f'{m:.3f}'} |" for c, m in zip(selection["grid"], selection["cv_roc_auc"]))),
        "train_roc_auc": md.number(metrics["train"]["roc_auc"], "the train split holds one class only"),
        "train_minus_val_roc_auc": md.number(selection.get("train_minus_val_roc_auc"), "a split holds one class only"),
    }


@dg.asset(group_name=GROUP, kinds={"scikitlearn", "safetensors"}, code_version="3")
def probe_model(settings: PipelineSettings, training_labels: pd.DataFrame, embeddings: EmbeddingSet) -> dg.Output:
    """Standardized, class-balanced logistic regression on the frozen embeddings, its C chosen by grouped
    cross-validation on the training split."""
    require_same_labels(labels_version(training_labels), embeddings=embeddings.labels_version)
    result = models.fit_probe(training_labels, embeddings, settings.data, settings.resolved_profile().seed)
    return dg.Output(result, metadata={"version": result.version, "backbone": result.backbone_description,
                                       "folder": dg.MetadataValue.path(result.folder),
                                       **_selection_metadata(result.selection, result.metrics),
                                       **_val_test_metadata(result.metrics)})


@dg.asset(group_name=GROUP, kinds={"pytorch", "safetensors"}, code_version=f"train-{TRAINING_CODE_VERSION}",
          pool=GPU_POOL, op_tags=GPU_STEP_TAGS)
def detector(context: dg.AssetExecutionContext, config: DetectorConfig, settings: PipelineSettings,
             training_labels: pd.DataFrame, label_stats: LabelStats) -> dg.Output:
    """The backbone fine-tuned end to end on native-resolution crops, soft-label BCE with pos_weight;
    the epoch with the best validation ROC-AUC is kept."""
    require_same_labels(labels_version(training_labels), label_stats=label_stats.labels_version)
    result = models.train_detector(
        training_labels, settings.data, config.applied_to(settings.resolved_profile()),
        label_stats.pos_weight if config.use_pos_weight else None, native_crops=config.native_crops,
        processes=config.processes, log=context.log.info,
        run_command=lambda argv: dg.PipesSubprocessClient().run(command=argv, context=context),
    )
    card = models.write_detector_card(settings.data, result, training_labels, context.run.run_id, git_commit())
    return dg.Output(result, metadata={
        "version": result.version, "backbone": result.backbone_description,
        "randomly_initialised": result.randomly_initialised,
        "best_epoch": result.best_epoch,
        "best_val_roc_auc": md.number(result.best_val_roc_auc, "validation holds one class only"),
        "history": md.history_plot(result.history),
        "folder": dg.MetadataValue.path(result.folder),
        "model_card": dg.MetadataValue.path(str(Path(result.folder) / "model_card.md")),  # in the data folder
        "parent_version": card["parent_version"] or "none",
        # read back by lineage and the nightly schedule: JSON, not a table
        "label_batches": dg.MetadataValue.json({b["batch"]: b["data_version"] for b in card["batches"]}),
    })
