"""A reviewer's verdict on an image (`ai`, `real`, `unsure`, an optional note, who, when), read from
files under `data/verdicts/` and validated row by row like a label batch: a bad row is quarantined
with its reason, never dropped.

A verdict file is CSV or parquet with the column `verdict` and, to say which image, `sha256` (the
image's content hash) or `image_path` (the review queue's `file`: relative to the data folder, or
absolute). Optional: `note`, `reviewer`, `decided_at` (ISO 8601; default: the file's modification
time). The review page writes one such file per reviewer (`record_verdicts`).
"""

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from detector_pipeline.data.labels import same_image_problems
from detector_pipeline.errors import BadInput
from detector_pipeline.registry.artifacts import write_bytes_atomic
from detector_pipeline.registry.locks import file_lock

VERDICTS_DIR = "verdicts"
VERDICTS = ("ai", "real", "unsure")
SCORE_OF = {"ai": 1.0, "real": 0.0}  # `unsure` keeps the teacher's score
SUFFIXES = (".csv", ".parquet")
COLUMNS = ["sha256", "file", "verdict", "note", "reviewer", "decided_at", "verdict_file", "row"]
QUARANTINE_COLUMNS = ["row", "image", "verdict", "reason"]
REVIEWER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class VerdictsError(BadInput, ValueError):
    """A whole verdict file can't be read (unreadable, no `verdict` column, no image column)."""


@dataclass
class ValidatedVerdicts:
    accepted: pd.DataFrame  # COLUMNS
    quarantined: pd.DataFrame  # QUARANTINE_COLUMNS

    @property
    def n_input(self) -> int:
        return len(self.accepted) + len(self.quarantined)


def verdict_files(folder: Path) -> list[Path]:
    """The verdict files a team or the review page put into the folder: CSV or parquet, not hidden,
    not a write in progress (`.partial`, `.tmp`)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in SUFFIXES and not p.name.startswith("."))


def read_verdict_file(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False) if path.suffix == ".csv" else pd.read_parquet(path)
    except FileNotFoundError:
        raise VerdictsError(f"verdict file not found: {path}") from None
    except Exception as exc:  # pandas and pyarrow raise many types for a bad file
        raise VerdictsError(f"unreadable verdict file {path}: {type(exc).__name__}: {exc}"[:400]) from None
    if "verdict" not in table.columns:
        raise VerdictsError(f"verdict file {path} lacks the column `verdict`: give ai, real or unsure per row")
    if "sha256" not in table.columns and "image_path" not in table.columns:
        raise VerdictsError(f"verdict file {path} names no image: give a column `sha256` or `image_path`")
    return table.reset_index(drop=True)


def _text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _when(value, default: pd.Timestamp) -> pd.Timestamp | None:
    text = _text(value)
    if not text:
        return default
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError):
        return None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def validate_verdicts(table: pd.DataFrame, known: pd.DataFrame, data_dir: Path, file_name: str,
                      default_time: pd.Timestamp) -> ValidatedVerdicts:
    """Every row checked; rows that fail are quarantined with the first reason found. `known`: the
    images verdicts may name (columns sha256, file: absolute or relative to the data folder). Two rows
    on one image with different verdicts quarantine both; the same verdict twice keeps the first."""
    by_hash = dict(zip(known["sha256"], known["file"]))
    by_file = {str((data_dir / f).resolve()): h for h, f in zip(known["sha256"], known["file"])}
    accepted, reasons = [], {}
    for i in range(len(table)):
        row = table.iloc[i]
        verdict = _text(row.get("verdict")).lower()
        sha, path = _text(row.get("sha256")).lower(), _text(row.get("image_path"))
        when = _when(row.get("decided_at"), default_time)
        if verdict not in VERDICTS:
            reasons[i] = f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}"
        elif not sha and not path:
            reasons[i] = "no image: give sha256 or image_path"
        elif sha and sha not in by_hash:
            reasons[i] = f"unknown image {sha}: in no label batch and no scored feed"
        elif not sha and str((data_dir / path).resolve()) not in by_file:
            reasons[i] = f"unknown image {path}: in no label batch and no scored feed"
        elif when is None:
            reasons[i] = f"decided_at {_text(row.get('decided_at'))!r} is not a date and time"
        else:
            sha = sha or by_file[str((data_dir / path).resolve())]
            accepted.append({"sha256": sha, "file": str(by_hash[sha]), "verdict": verdict,
                             "note": _text(row.get("note")), "reviewer": _text(row.get("reviewer")) or "unknown",
                             "decided_at": when, "verdict_file": file_name, "row": i})
    accepted_table = pd.DataFrame(accepted, columns=COLUMNS)
    reasons.update(_conflicts(accepted_table))
    keep = ~accepted_table["row"].isin(reasons)
    quarantined = pd.DataFrame([{"row": i, "image": _text(table.iloc[i].get("sha256")) or _text(table.iloc[i].get("image_path")),
                                 "verdict": _text(table.iloc[i].get("verdict")), "reason": r}
                                for i, r in sorted(reasons.items())], columns=QUARANTINE_COLUMNS)
    return ValidatedVerdicts(accepted_table[keep].reset_index(drop=True), quarantined)


def _conflicts(accepted: pd.DataFrame) -> dict[int, str]:
    verdict_of = dict(zip(accepted["row"], accepted["verdict"]))
    groups = accepted.groupby("sha256", sort=False)["row"].apply(list)
    return same_image_problems(groups, verdict_of.__getitem__, "verdict")


def latest_verdicts(tables: "pd.DataFrame | dict[str, pd.DataFrame] | None") -> pd.DataFrame:
    """One verdict per image from every verdict file: the latest decision wins (ties: the later file).
    Dagster's IO manager hands None for no partition, a bare table for one, a dict for several."""
    if tables is None:
        frames = []
    elif isinstance(tables, pd.DataFrame):
        frames = [tables]
    else:
        frames = [tables[k] for k in sorted(tables)]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    table = pd.concat(frames, ignore_index=True).sort_values(["decided_at", "verdict_file", "row"], kind="stable")
    return table.drop_duplicates("sha256", keep="last").reset_index(drop=True)


def apply_verdicts(labels: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """A person's verdict overrides the teacher's score for that image (`ai` 1.0, `real` 0.0, `unsure`
    keeps the teacher's); `teacher_score` keeps the teacher's, `verdict`/`reviewer` say who decided,
    `overridden` which rows changed. The binary `label` follows the score."""
    from detector_pipeline.data.label_stats import POSITIVE_THRESHOLD

    table = labels.copy()
    by_hash = verdicts.set_index("sha256") if len(verdicts) else None
    table["teacher_score"] = table.get("teacher_score", table["ai_score"])
    found = table["sha256"].isin(by_hash.index) if by_hash is not None else pd.Series(False, index=table.index)
    table["verdict"] = table["sha256"].map(by_hash["verdict"]) if by_hash is not None else None
    table["reviewer"] = table["sha256"].map(by_hash["reviewer"]) if by_hash is not None else None
    override = table["verdict"].map(SCORE_OF)
    table["overridden"] = (found & override.notna()).astype(bool)
    table["ai_score"] = override.where(table["overridden"], table["teacher_score"]).astype(float)
    table["label"] = (table["ai_score"] >= POSITIVE_THRESHOLD).astype(int)
    return table


def reviewer_file_name(reviewer: str) -> str:
    if not REVIEWER_NAME.match(reviewer):
        raise BadInput(f"reviewer name {reviewer!r}: use letters, digits, '.', '_', '@' or '-' (at most 64)")
    return f"review-{reviewer}.parquet"


def record_verdicts(data_dir: Path, reviewer: str, rows: list[dict]) -> Path:
    """Add a reviewer's verdicts to their file under data/verdicts/, atomically and under a lock:
    two reviewers (or two tabs) at once never lose each other's rows. A later verdict on the same
    image replaces the earlier one in this file (the history stays in the rows' decided_at order
    across files). rows: sha256, image_path, verdict, note."""
    path = data_dir / VERDICTS_DIR / reviewer_file_name(reviewer)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    new = pd.DataFrame([{"sha256": r["sha256"], "image_path": r.get("image_path", ""), "verdict": r["verdict"],
                         "note": r.get("note", ""), "reviewer": reviewer, "decided_at": r.get("decided_at", now)}
                        for r in rows])
    with file_lock(path):
        old = pd.read_parquet(path) if path.exists() else new.iloc[:0]
        table = pd.concat([old, new], ignore_index=True).drop_duplicates("sha256", keep="last")
        write_bytes_atomic(path, table.to_parquet(index=False))
    return path


VALIDATED_DIR = "reviewed"


def validated_path(data_dir: Path, file_name: str) -> Path:
    """Where reviewed_labels keeps a verdict file's validated rows (derived: validating again remakes it)."""
    return data_dir / VALIDATED_DIR / f"{file_name}.parquet"


def read_validated(data_dir: Path, file_names: list[str]) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The validated rows of these verdict files, and the names of those not validated (or unreadable)."""
    tables, missing = {}, []
    for name in file_names:
        try:
            tables[name] = pd.read_parquet(validated_path(data_dir, name))
        except Exception:  # noqa: BLE001 (not there yet, or damaged: validating the file again makes it)
            missing.append(name)
    return tables, missing


def write_quarantine(data_dir: Path, file_name: str, version: str, quarantined: pd.DataFrame) -> Path:
    path = data_dir / "quarantine" / VERDICTS_DIR / file_name / f"{version}.parquet"
    write_bytes_atomic(path, quarantined.to_parquet(index=False))
    return path


def verdicts_version(table: pd.DataFrame) -> str:
    import hashlib

    digest = hashlib.sha256()
    for row in table[["sha256", "verdict", "reviewer", "decided_at"]].itertuples(index=False):
        digest.update(f"{row.sha256}:{row.verdict}:{row.reviewer}:{row.decided_at};".encode())
    return digest.hexdigest()[:16]
