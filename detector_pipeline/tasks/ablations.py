"""ablation_study: the article's claims, each variant trained over several seeds and scored on the
in-distribution test (evaluation/ablations.py compares them)."""

from pathlib import Path

import numpy as np
import pandas as pd

from detector_pipeline.config.profiles import Profile
from detector_pipeline.data.label_stats import LabelStats
from detector_pipeline.data.splits import group_column, image_files, rows_in
from detector_pipeline.evaluation import ablations, test_sets
from detector_pipeline.evaluation.metrics import roc_auc
from detector_pipeline.models.embeddings import EmbeddingSet
from detector_pipeline.registry.pointer import model_folder
from detector_pipeline.registry.records import ModelRecord
from detector_pipeline.tasks.labels import labels_version
from detector_pipeline.tasks.models import detector_scorer, probe_scores_for, train_detector, training_key


def run_ablations(labels: pd.DataFrame, label_stats: LabelStats, embedding_set: EmbeddingSet, probe_model: ModelRecord,
                  data_dir: Path, profile: Profile, seeds=None, log=print) -> dict:
    """Every (variant, seed) training, scored on the in-distribution test; each finished one is recorded
    at once, so a rerun after an interruption trains only what is missing."""
    test_all = rows_in(labels, "test")
    test = test_all[test_sets.test_set_masks(test_all)[test_sets.IN_DISTRIBUTION]]
    y = test["label"].to_numpy()
    probe_scores = probe_scores_for(probe_model, embedding_set, test["sha256"], data_dir)  # fails fast
    version = labels_version(labels)
    done = ablations.finished_runs(data_dir, version)
    variants = {v: o for v, o in ablations.VARIANTS.items() if ablations.applicable(v, profile.training)}
    results = {variant: [] for variant in variants}
    for seed in seeds or ablations.SEEDS:
        for variant, options in variants.items():
            pos_weight = label_stats.pos_weight if options["use_pos_weight"] else None
            arm = dict(native_crops=options["native_crops"], recipe_only=options.get("recipe_only", False))
            key = training_key(labels, profile.with_overrides(seed=seed), pos_weight, **arm)
            earlier = done.get((variant, seed))
            # kept only when trained with these very settings: a changed profile trains the arm again
            if earlier and earlier.get("training_key") == key and len(earlier.get(ablations.SCORES, [])) == len(test):
                log(f"ablation {variant}, seed {seed}: done in an earlier run, kept")
                results[variant].append(earlier)
                continue
            log(f"ablation {variant}, seed {seed}")
            model = train_detector(labels, data_dir, profile.with_overrides(seed=seed), pos_weight, log=log,
                                   models_subdir="models/ablations", **arm)
            # rounded as recorded, so that the AUC here and the one recomputed from the record agree
            scores = np.round(detector_scorer(model_folder(data_dir, model.folder), profile).score(image_files(test)), 6)
            row = {"seed": seed, "test_roc_auc": roc_auc(y, scores), "version": model.version, "training_key": key,
                   "best_val_roc_auc": model.best_val_roc_auc, ablations.SCORES: scores.tolist()}
            ablations.record_run(data_dir, version, variant, row)
            results[variant].append(row)
    return ablations.summarize(results, probe_scores, y, group_column(test).to_numpy())
