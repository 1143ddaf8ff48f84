"""The article's three claims, each tested over several seeds: (a) pos_weight vs plain BCE, (b) native
crops vs resizing the whole image, (c) fine-tuned detector vs frozen probe."""

import json
from pathlib import Path

import numpy as np
from scipy import stats

from detector_pipeline.registry.artifacts import write_json_atomic

SEEDS = (0, 1, 2)
VARIANTS = {
    "pos_weight_native": {"use_pos_weight": True, "native_crops": True},  # the recipe
    "plain_bce_native": {"use_pos_weight": False, "native_crops": True},
    "pos_weight_resized": {"use_pos_weight": True, "native_crops": False},
}
CLAIMS = (
    ("(a) BCE with pos_weight beats plain BCE", "pos_weight_native", "plain_bce_native"),
    ("(b) native-resolution crops beat resizing the whole image to 224", "pos_weight_native", "pos_weight_resized"),
    ("(c) the fine-tuned detector beats the frozen probe", "pos_weight_native", "probe"),
)


def verdict(differences: list[float], level: float = 0.95) -> dict:
    """Mean paired difference over seeds with a t interval: confirmed when the interval is above zero,
    refuted when below, inconclusive otherwise."""
    d = np.asarray([x for x in differences if x is not None], dtype=float)
    if len(d) < 2:
        return {"difference": float(d.mean()) if len(d) else None, "ci95": None, "verdict": "inconclusive",
                "n_seeds": int(len(d))}
    half = stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    low, high = d.mean() - half, d.mean() + half
    word = "confirmed" if low > 0 else "refuted" if high < 0 else "inconclusive"
    return {"difference": float(d.mean()), "ci95": [float(low), float(high)], "verdict": word, "n_seeds": int(len(d))}


def summarize(results: dict[str, list[dict]], probe_auc: float | None) -> dict:
    """results: variant -> [{"seed", "test_roc_auc", ...}]. The probe is a convex fit: one value."""
    by_seed = {v: {r["seed"]: r["test_roc_auc"] for r in rows} for v, rows in results.items()}
    claims = []
    for claim, a, b in CLAIMS:
        seeds = sorted(by_seed[a])
        diffs = [by_seed[a][s] - (probe_auc if b == "probe" else by_seed[b].get(s, np.nan))
                 if by_seed[a][s] is not None and (probe_auc if b == "probe" else by_seed[b].get(s)) is not None else None
                 for s in seeds]
        claims.append({"claim": claim, "a": a, "b": b, **verdict(diffs),
                       "words": _words(claim, verdict(diffs))})
    return {"status": "ran", "seeds": sorted({r["seed"] for rows in results.values() for r in rows}),
            "runs": results, "probe_test_roc_auc": probe_auc, "claims": claims}


def _words(claim: str, v: dict) -> str:
    if v["difference"] is None:
        return f"{claim}: no result"
    ci = f"[{v['ci95'][0]:+.3f}, {v['ci95'][1]:+.3f}]" if v["ci95"] else "(no interval)"
    return {"confirmed": f"{claim}: confirmed here, by {v['difference']:+.3f} ROC-AUC {ci} over {v['n_seeds']} seeds.",
            "refuted": f"{claim}: refuted here, the other way round by {v['difference']:+.3f} {ci}.",
            "inconclusive": f"{claim}: inconclusive here, {v['difference']:+.3f} {ci}: the seeds disagree or the "
                            "difference is within their spread."}[v["verdict"]]


def result_path(data_dir: Path, labels_version: str) -> Path:
    return data_dir / "reports" / "ablations" / f"{labels_version}.json"


def runs_path(data_dir: Path, labels_version: str) -> Path:
    return data_dir / "reports" / "ablations" / f"{labels_version}.runs.jsonl"


def record_run(data_dir: Path, labels_version: str, variant: str, row: dict) -> None:
    """One finished training, appended as one line: an interrupted study keeps what it finished."""
    path = runs_path(data_dir, labels_version)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as runs:
        runs.write(json.dumps({"variant": variant, **row}, sort_keys=True) + "\n")


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
