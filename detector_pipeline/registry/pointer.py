"""The promotion pointer: which detector the feed is scored with. Moved atomically, with a history.

Records hold model folders relative to the data folder, so a data folder that is moved, copied or
mounted elsewhere keeps working."""

import fcntl
import json
import os
import time
from pathlib import Path

from detector_pipeline.errors import ArtifactError, NotFound
from detector_pipeline.registry.artifacts import append_line, write_json_atomic
from detector_pipeline.registry.records import ModelRecord, PromotedModel
from detector_pipeline.registry.reports import latest_report_of

POINTER = "promoted.json"
HISTORY = "history.jsonl"
REPAIR = "see `detector-pipeline models`, then `detector-pipeline promote VERSION`"


def registry_dir(data_dir: Path) -> Path:
    return data_dir / "registry"


def relative_folder(data_dir: Path, folder: Path) -> str:
    """How a record names a model folder: relative to the data folder when it lies inside it."""
    try:
        return str(Path(folder).resolve().relative_to(Path(data_dir).resolve()))
    except ValueError:
        return str(folder)


def model_folder(data_dir: Path, folder: str) -> Path:
    """The folder a record names (relative to the data folder; an absolute one is taken as is)."""
    return Path(data_dir) / folder


def read_promoted(data_dir: Path) -> dict | None:
    """The promotion pointer, or None when nothing was ever promoted."""
    path = registry_dir(data_dir) / POINTER
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"promotion pointer {path} is unreadable ({exc}): {REPAIR}") from None
    if not isinstance(record, dict) or not {"version", "folder", "threshold"} <= set(record):
        raise ArtifactError(f"promotion pointer {path} lacks version, folder or threshold: {REPAIR}")
    return record


def read_promoted_model(data_dir: Path) -> PromotedModel | None:
    """The promotion pointer as the assets hand it on; None when nothing was ever promoted."""
    record = read_promoted(data_dir)
    return PromotedModel.of_record(record) if record is not None else None


def promoted_model(data_dir: Path) -> tuple[PromotedModel, Path]:
    """The promoted model and its folder; an operator error when there is none or its files are gone."""
    record = read_promoted_model(data_dir)
    if record is None:
        raise ArtifactError(f"no promoted detector in {registry_dir(data_dir)}: train one (make demo) or "
                            "promote a version (detector-pipeline promote VERSION)")
    folder = model_folder(data_dir, record.folder)
    if not (folder / "model.safetensors").is_file():
        raise ArtifactError(f"promoted detector {record.version} is missing: {folder} has no model.safetensors; "
                            f"{REPAIR}")
    return record, folder


def promote(data_dir: Path, record: dict, forced: str | None = None) -> dict:
    """Point at a new model version; readers see the old pointer or the new one, never half of one.
    `forced` is the reason an operator gave for skipping the gate; it goes into the history."""
    folder = registry_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two promotions at once: one after the other, history intact
        return _promote_locked(data_dir, record, forced)


def _promote_locked(data_dir: Path, record: dict, forced: str | None) -> dict:
    try:
        previous = read_promoted(data_dir)
    except ArtifactError:
        previous = None  # an unreadable pointer is what a promotion repairs
    else:
        _drop_unfinished(registry_dir(data_dir) / HISTORY, previous)
    record = {**record, "promoted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "previous_version": previous["version"] if previous else None}
    if forced is not None:
        record["forced"] = forced
    folder = registry_dir(data_dir)
    history = folder / HISTORY
    size = history.stat().st_size if history.exists() else 0
    append_line(history, json.dumps(record, sort_keys=True))
    try:
        write_json_atomic(folder / POINTER, record)
    except Exception:
        os.truncate(history, size)  # a pointer that did not move has no history line
        raise
    return record


def _is_unfinished(last_line: bytes, pointer: dict | None) -> bool:
    """The history's last line is a promotion that never took effect: killed between its history line
    and its pointer (the line names another promotion than the pointer), or in the middle of the
    line itself (not JSON)."""
    try:
        last = json.loads(last_line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return True
    return not isinstance(last, dict) or pointer is None or (last.get("version"), last.get("promoted_at")) != (
        pointer.get("version"), pointer.get("promoted_at"))


def _drop_unfinished(history: Path, pointer: dict | None) -> None:
    """Under the promotion lock, with a readable pointer: the line of a promotion cut off goes."""
    if not history.exists():
        return
    lines = history.read_bytes().splitlines(keepends=True)
    if lines and _is_unfinished(lines[-1], pointer):
        os.truncate(history, history.stat().st_size - len(lines[-1]))


def promotion_history(data_dir: Path) -> list[dict]:
    """Every promotion that took effect, oldest first; a last line the pointer does not confirm (a
    promotion killed half-way, or one in progress) is left out."""
    path = registry_dir(data_dir) / HISTORY
    if not path.exists():
        return []
    lines = path.read_bytes().splitlines()
    try:
        pointer = read_promoted(data_dir)
    except ArtifactError:
        pointer = None
    if lines and (pointer is not None or not (registry_dir(data_dir) / POINTER).exists()) and _is_unfinished(
            lines[-1], pointer):
        lines = lines[:-1]
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ArtifactError(f"promotion history {path} line {number} is not JSON: delete that line") from None
    return rows


def detector_record(data_dir: Path, version: str) -> tuple[ModelRecord, dict]:
    """A saved detector's record (its folder relative to the data folder) and its model card."""
    folder = data_dir / "models" / "detector" / version
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise NotFound(f"no detector version {version!r} in {folder.parent}: see `detector-pipeline models`")
    try:
        config = json.loads(config_file.read_text())
        card = json.loads((folder / "model_card.json").read_text()) if (folder / "model_card.json").is_file() else {}
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{folder}: config.json or model_card.json is unreadable ({exc}); retrain it") from None
    return ModelRecord.saved(version, relative_folder(data_dir, folder), config), card


def list_models(data_dir: Path) -> list[dict]:
    """Every saved detector version with its metrics (validation from its card, test from its newest
    evaluation report) and status (promoted, was promoted, candidate), and `missing` for a promoted
    version whose files are gone."""
    promoted = read_promoted(data_dir)
    ever = {r["version"] for r in promotion_history(data_dir)}
    rows = []
    for config_file in sorted((data_dir / "models" / "detector").glob("*/config.json")):
        folder = config_file.parent
        card_file = folder / "model_card.json"
        card = json.loads(card_file.read_text()) if card_file.exists() else json.loads(config_file.read_text())
        metrics = card.get("metrics", {})
        version = folder.name
        tested = (latest_report_of(data_dir, version) or {}).get("detector", {})
        status = "promoted" if promoted and promoted["version"] == version else "was promoted" if version in ever else "candidate"
        if not (folder / "model.safetensors").is_file():
            status = "missing"
        rows.append({
            "version": version, "status": status, "backbone": card.get("backbone_description"),
            "val_roc_auc": metrics.get("val_roc_auc", card.get("best_val_roc_auc")),
            "test_roc_auc": (tested.get("test_in_distribution") or {}).get("roc_auc"),
            "test_pr_auc": (tested.get("test_in_distribution") or {}).get("pr_auc"),
            "test_held_out_roc_auc": (tested.get("test_held_out") or {}).get("roc_auc"),
            "labels_version": card.get("labels_version"), "run_id": card.get("run_id"),
            "created": time.strftime("%Y-%m-%d %H:%M", time.gmtime(config_file.stat().st_mtime)),
        })
    if promoted and promoted["version"] not in {r["version"] for r in rows}:
        rows.append({"version": promoted["version"], "status": "missing", "backbone": None, "val_roc_auc": None,
                     "test_roc_auc": None, "test_pr_auc": None, "test_held_out_roc_auc": None, "labels_version": None,
                     "run_id": promoted.get("run_id"),
                     "created": promoted.get("promoted_at", "")[:16].replace("T", " ")})
    return sorted(rows, key=lambda r: r["created"])
