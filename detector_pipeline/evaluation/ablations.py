"""The article's three claims and this project's training changes, each a paired comparison on the same
in-distribution test images over several seeds: (a) pos_weight vs plain BCE, (b) native crops vs
resizing the whole image, (c) fine-tuned detector vs the frozen probe (its C chosen by grouped
cross-validation, as the pipeline fits it), (d) the profile's training changes vs the article's recipe
as written. The interval counts seed and test-sampling noise (evaluation.noise)."""

import json
from pathlib import Path

import numpy as np

from detector_pipeline.evaluation.metrics import roc_auc
from detector_pipeline.evaluation.noise import paired_difference
from detector_pipeline.registry.artifacts import append_line, write_json_atomic

SEEDS = (0, 1, 2, 3, 4)
VARIANTS = {
    "pos_weight_native": {"use_pos_weight": True, "native_crops": True},  # the detector as the profile trains it
    "plain_bce_native": {"use_pos_weight": False, "native_crops": True},
    "pos_weight_resized": {"use_pos_weight": True, "native_crops": False},
    # the article's recipe as written: no schedule, one crop, one learning rate, no averaging or augmentation
    "recipe_as_written": {"use_pos_weight": True, "native_crops": True, "recipe_only": True},
}
CLAIMS = (
    ("(a) BCE with pos_weight beats plain BCE", "pos_weight_native", "plain_bce_native"),
    ("(b) native-resolution crops beat resizing the whole image to 224", "pos_weight_native", "pos_weight_resized"),
    ("(c) the fine-tuned detector beats the frozen probe (C chosen by grouped cross-validation)",
     "pos_weight_native", "probe"),
    ("(d) the profile's training changes beat the article's recipe as written", "pos_weight_native",
     "recipe_as_written"),
)
SCORES = "test_scores"  # per run, in the in-distribution test's row order
NOT_APPLICABLE = {"recipe_as_written": "the profile makes no training changes beyond the recipe"}


def applicable(variant: str, training: tuple) -> bool:
    """The recipe-as-written arm only where the profile changes the training (else it is the first arm)."""
    return not VARIANTS[variant].get("recipe_only") or bool(training)


def summarize(results: dict[str, list[dict]], probe_scores: np.ndarray, y: np.ndarray, groups: np.ndarray) -> dict:
    """results: variant -> [{"seed", "test_roc_auc", "test_scores", ...}]. The probe is a convex fit:
    one set of scores, paired with every seed of the other arm."""
    by_seed = {v: {r["seed"]: np.asarray(r[SCORES], dtype=float) for r in rows} for v, rows in results.items()}
    claims = []
    for claim, a, b in CLAIMS:
        if b != "probe" and not by_seed.get(b):  # an arm the profile has no use for (see applicable)
            claims.append({"claim": claim, "a": a, "b": b, "seeds": [], "difference": None, "ci95": None,
                           "verdict": "not applicable", "n_seeds": 0, "minimum_detectable_difference": None,
                           "words": f"{claim}: not applicable: {NOT_APPLICABLE[b]}."})
            continue
        seeds = sorted(set(by_seed[a]) & (set(by_seed[a]) if b == "probe" else set(by_seed[b])))
        scores_a = np.stack([by_seed[a][s] for s in seeds]) if seeds else np.empty((0, len(y)))
        scores_b = np.asarray(probe_scores, dtype=float) if b == "probe" else np.stack([by_seed[b][s] for s in seeds])
        result = (paired_difference(y, scores_a, scores_b, groups) if seeds else
                  {"difference": None, "ci95": None, "verdict": "inconclusive", "n_seeds": 0,
                   "minimum_detectable_difference": None})
        claims.append({"claim": claim, "a": a, "b": b, "seeds": seeds, **result, "words": _words(claim, result)})
    runs = {v: [{k: x for k, x in r.items() if k != SCORES} for r in rows] for v, rows in results.items()}
    return {"status": "ran", "seeds": sorted({r["seed"] for rows in results.values() for r in rows}),
            "test": "in-distribution test (generator families seen in training), the same images for both arms",
            "interval": "95 %, two-level bootstrap: source groups and seeds resampled together",
            "runs": runs, "probe_test_roc_auc": roc_auc(y, probe_scores), "claims": claims}


def _words(claim: str, v: dict) -> str:
    if v["difference"] is None:
        return f"{claim}: no result"
    ci = f"[{v['ci95'][0]:+.3f}, {v['ci95'][1]:+.3f}]" if v["ci95"] else "(no interval)"
    mdd = v.get("minimum_detectable_difference")
    can_see = f"; a difference below {mdd:.3f} could not be seen (80 % power)" if mdd is not None else ""
    return {"confirmed": f"{claim}: confirmed here, by {v['difference']:+.3f} ROC-AUC {ci} over {v['n_seeds']} seeds"
                         f"{can_see}.",
            "refuted": f"{claim}: refuted here, the other way round by {v['difference']:+.3f} {ci}{can_see}.",
            "inconclusive": f"{claim}: inconclusive here, {v['difference']:+.3f} {ci} over {v['n_seeds']} seeds"
                            f"{can_see}."}[v["verdict"]]


def result_path(data_dir: Path, labels_version: str) -> Path:
    return data_dir / "reports" / "ablations" / f"{labels_version}.json"


def runs_path(data_dir: Path, labels_version: str) -> Path:
    return data_dir / "reports" / "ablations" / f"{labels_version}.runs.jsonl"


def record_run(data_dir: Path, labels_version: str, variant: str, row: dict) -> None:
    """One finished training, appended as one line: an interrupted study keeps what it finished."""
    path = runs_path(data_dir, labels_version)
    append_line(path, json.dumps({"variant": variant, **row}, sort_keys=True))


def finished_runs(data_dir: Path, labels_version: str) -> dict[tuple[str, int], dict]:
    """(variant, seed) -> its result, for the trainings an earlier run of the study finished. A line cut
    short by a kill is ignored: that training runs again."""
    path = runs_path(data_dir, labels_version)
    done = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        variant = row.pop("variant")
        done[variant, row["seed"]] = row
    return done


def save(data_dir: Path, labels_version: str, summary: dict) -> Path:
    path = result_path(data_dir, labels_version)
    write_json_atomic(path, summary)
    return path


def load(data_dir: Path, labels_version: str) -> dict | None:
    path = result_path(data_dir, labels_version)
    return json.loads(path.read_text()) if path.exists() else None
