"""The live figures: one line per batch evaluation (the promoted model on a new label batch, before
any retrain used it) in `production/live.jsonl` under the data folder. The UI's series, `models`'
live column and `lineage`'s live lines read it; no Dagster, no torch, so the CLI stays fast."""

import json
from pathlib import Path

from detector_pipeline.registry.durable import append_line
from detector_pipeline.registry.locks import file_lock

LEDGER = "production/live.jsonl"
AGING_KEYS = ("batch_roc_auc", "batch_roc_auc_ci95", "test_roc_auc", "test_roc_auc_ci95", "difference",
              "worse_beyond_noise", "judged")


def append(data_dir: Path, result: dict) -> None:
    """One line for a measured batch evaluation (tasks.production.evaluate_batch's result)."""
    entry = {k: result[k] for k in ("batch", "batch_version", "model_version", "threshold", "n", "evaluated_at")}
    entry.update({k: result["aging"][k] for k in AGING_KEYS})
    entry["batch_pr_auc"] = result["figures"]["teacher"]["pr_auc"]["value"]
    entry["ai_share"] = result["figures"]["decisions"]["ai_share"]
    entry["worse_slices"] = [s["slice"] for s in result["aging"]["worse_slices"]]
    path = data_dir / LEDGER
    with file_lock(path):  # two validations at once, or pods on one volume
        append_line(path, json.dumps(entry, sort_keys=True))


def series(data_dir: Path) -> list[dict]:
    """Every batch evaluation in the order they ran; a batch evaluated again with the same model keeps
    its latest figures, in its first place. A line that is not JSON (a write cut short) is skipped."""
    path = data_dir / LEDGER
    if not path.is_file():
        return []
    latest: dict[tuple[str, str], dict] = {}
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        latest[(entry["batch"], entry["model_version"])] = entry
    return list(latest.values())


def by_version(data_dir: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for entry in series(data_dir):
        out.setdefault(entry["model_version"], []).append(entry)
    return out


def _fmt(value, ci=None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def live_lines(entries: list[dict]) -> list[str]:
    """One line per batch: its ROC-AUC beside the model's test figure, and the verdict."""
    lines = []
    for e in entries:
        verdict = ("not judged" if not e.get("judged", True) else
                   "WORSE beyond noise" if e["worse_beyond_noise"] else "within noise")
        slices = f"; worse: {', '.join(e['worse_slices'])}" if e.get("worse_slices") else ""
        lines.append(f"  live on batch {e['batch']} ({e['n']} images, {e['evaluated_at']}): ROC-AUC "
                     f"{_fmt(e['batch_roc_auc'], e['batch_roc_auc_ci95'])} against test {_fmt(e['test_roc_auc'])}: "
                     f"{verdict}{slices}")
    return lines
