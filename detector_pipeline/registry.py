"""The promotion pointer: which detector the feed is scored with. Moved atomically, with a history."""

import fcntl
import json
import time
from pathlib import Path

from detector_pipeline.artifacts import write_json_atomic

POINTER = "promoted.json"
HISTORY = "history.jsonl"


def registry_dir(data_dir: Path) -> Path:
    return data_dir / "registry"


def read_promoted(data_dir: Path) -> dict | None:
    path = registry_dir(data_dir) / POINTER
    return json.loads(path.read_text()) if path.exists() else None


def promote(data_dir: Path, record: dict) -> dict:
    """Point at a new model version; readers see the old pointer or the new one, never half of one."""
    folder = registry_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two promotions at once: one after the other, history intact
        return _promote_locked(data_dir, record)


def _promote_locked(data_dir: Path, record: dict) -> dict:
    previous = read_promoted(data_dir)
    record = {**record, "promoted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "previous_version": previous["version"] if previous else None}
    folder = registry_dir(data_dir)
    write_json_atomic(folder / POINTER, record)
    with open(folder / HISTORY, "a") as history:
        history.write(json.dumps(record, sort_keys=True) + "\n")
    return record


def promotion_history(data_dir: Path) -> list[dict]:
    path = registry_dir(data_dir) / HISTORY
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def list_models(data_dir: Path) -> list[dict]:
    """Every saved detector version with its metrics and status (promoted, previously promoted, candidate)."""
    promoted = read_promoted(data_dir)
    ever = {r["version"] for r in promotion_history(data_dir)}
    rows = []
    for config_file in sorted((data_dir / "models" / "detector").glob("*/config.json")):
        folder = config_file.parent
        card_file = folder / "model_card.json"
        card = json.loads(card_file.read_text()) if card_file.exists() else json.loads(config_file.read_text())
        metrics = card.get("metrics", {})
        version = folder.name
        status = "promoted" if promoted and promoted["version"] == version else "was promoted" if version in ever else "candidate"
        rows.append({
            "version": version, "status": status, "backbone": card.get("backbone_description"),
            "val_roc_auc": metrics.get("val_roc_auc", card.get("best_val_roc_auc")),
            "test_roc_auc": (metrics.get("test") or {}).get("roc_auc"),
            "test_pr_auc": (metrics.get("test") or {}).get("pr_auc"),
            "labels_version": card.get("labels_version"), "run_id": card.get("run_id"),
            "created": time.strftime("%Y-%m-%d %H:%M", time.gmtime(config_file.stat().st_mtime)),
        })
    return sorted(rows, key=lambda r: r["created"])
