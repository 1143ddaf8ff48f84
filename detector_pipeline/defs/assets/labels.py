"""teacher_labels (one partition per label batch), training_labels, label_stats, and the split check."""

import dagster as dg
import pandas as pd

from detector_pipeline.data.batches import combine_batches
from detector_pipeline.data.label_stats import LabelStats
from detector_pipeline.data.splits import group_column
from detector_pipeline.defs import metadata as md
from detector_pipeline.defs.configs import SplitConfig
from detector_pipeline.defs.partitions import GROUP, label_batches
from detector_pipeline.defs.resources import PipelineSettings
from detector_pipeline.evaluation import plots
from detector_pipeline.evaluation.model_card import batches_summary
from detector_pipeline.review.verdicts import apply_verdicts, latest_verdicts
from detector_pipeline.tasks import labels


def _splits(table: pd.DataFrame) -> dg.MetadataValue:
    return dg.MetadataValue.json({k: int(v) for k, v in table["split"].value_counts().items()})


@dg.asset(group_name=GROUP, kinds={"pandas", "parquet"}, code_version="4", partitions_def=label_batches)
def teacher_labels(context: dg.AssetExecutionContext, config: SplitConfig, settings: PipelineSettings) -> dg.Output:
    """One label batch, validated: bad rows quarantined with a reason, a group-wise split."""
    batch = context.partition_key
    location = settings.batch_location(batch)
    validated = labels.prepare_labels(location.labels_path, location.images_root, settings.seed,
                                      config.val_fraction, config.test_fraction)
    table, quarantined = validated.accepted, validated.quarantined
    version = labels.labels_version(table)
    table["batch"], table["batch_version"] = batch, version
    quarantine_file = labels.write_quarantine(settings.data, batch, version, quarantined)
    return dg.Output(table, data_version=dg.DataVersion(version), metadata={
        "dagster/row_count": len(table),
        "input_rows": validated.n_input,
        "accepted": len(table),
        "quarantined": len(quarantined),
        "quarantine_reasons": dg.MetadataValue.json(quarantined["reason"].value_counts().to_dict()),
        "quarantine": md.table(quarantined, limit=50),
        "quarantine_file": dg.MetadataValue.path(str(quarantine_file)),
        "splits": _splits(table),
        "labels_path": dg.MetadataValue.path(str(location.labels_path)),
        "labels_version": version,
    })


@dg.asset(group_name=GROUP, kinds={"pandas"}, code_version="3",
          ins={"reviewed_labels": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())})
def training_labels(teacher_labels, reviewed_labels) -> dg.Output:
    """Every label batch as one table; an image labelled twice keeps its latest label. A person's
    verdict (reviewed_labels, the latest per image) overrides the teacher's score: `ai` 1.0, `real`
    0.0, `unsure` the teacher's; `teacher_score`, `verdict`, `reviewer` and `overridden` say where."""
    table = apply_verdicts(combine_batches(teacher_labels), latest_verdicts(reviewed_labels))
    version = labels.labels_version(table)
    overridden = table[table["overridden"]]
    return dg.Output(table, data_version=dg.DataVersion(version), metadata={
        "dagster/row_count": len(table),
        "overridden_by_people": len(overridden),
        "overrides": md.table(overridden[["verdict", "reviewer", "teacher_score", "ai_score", "split", "file"]], limit=50),
        "batches": dg.MetadataValue.json(batches_summary(table)),
        "labels_version": version,
        "splits": _splits(table),
    })


@dg.asset_check(asset=training_labels, blocking=True)
def no_source_in_two_splits(training_labels: pd.DataFrame) -> dg.AssetCheckResult:
    per_group = training_labels.assign(group=group_column(training_labels)).groupby("group")["split"].nunique()
    leaking = per_group[per_group > 1]
    return dg.AssetCheckResult(passed=leaking.empty, metadata={"groups": len(per_group), "leaking_groups": len(leaking)})


@dg.asset(group_name=GROUP, kinds={"python"}, code_version="3")
def label_stats(training_labels: pd.DataFrame) -> dg.Output[LabelStats]:
    """Share of scores below 0.1 and at or above 0.5, and pos_weight = (1 - p) / p, from the train split."""
    result = labels.label_stats_of(training_labels)
    histogram = plots.score_histogram(training_labels["ai_score"].to_numpy())
    return dg.Output(result, metadata={
        "share_below_0_1": md.number(result.all_splits.share_below_0_1, "no labels"),
        "share_at_or_above_0_5": md.number(result.all_splits.share_at_or_above_0_5, "no labels"),
        "positives": result.all_splits.positives,
        "train_share_at_or_above_0_5": md.number(result.train.share_at_or_above_0_5, "no train split"),
        "pos_weight": md.number(result.pos_weight, "the train split holds one class only: plain BCE"),
        "histogram": dg.MetadataValue.md(plots.markdown_image(histogram, "teacher score histogram")),
    })
