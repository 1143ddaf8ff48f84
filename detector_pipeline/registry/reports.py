"""An evaluation report's folder, `reports/<report_id>`, as evaluation_report writes it: report.json
for tools, report.md and its figures for people, and the two tables production compares with:
- `reference_scores.parquet`: the detector's P(AI) on its in-distribution test split (drift, export parity);
- `trained_on.parquet`: content hashes of the images it trained and validated on (a later batch that
  labels them again is not a live measurement).

Readers find a report by its id, which the promotion pointer records, so what production reads is
what the promoted model's evaluation wrote."""

import json
from pathlib import Path

import pandas as pd

from detector_pipeline.errors import ArtifactError

REFERENCE_SCORES = "reference_scores.parquet"
TRAINED_ON = "trained_on.parquet"
REPORT = "report.json"


def reports_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "reports"


def report_folder(data_dir: Path, report_id: str) -> Path:
    return reports_dir(data_dir) / report_id


def read_report(data_dir: Path, report_id: str | None) -> dict | None:
    """report.json of that report, or None when there is no such report."""
    if not report_id:
        return None
    path = report_folder(data_dir, report_id) / REPORT
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"evaluation report {path} is unreadable ({exc}): materialize evaluation_report "
                            "again (job `report`)") from None


def latest_report_of(data_dir: Path, detector_version: str) -> dict | None:
    """The newest report that evaluated this detector version (several: one per probe it was compared
    with), or None when it was never evaluated."""
    candidates = [p for p in reports_dir(data_dir).glob(f"{detector_version}-*/{REPORT}") if not p.parent.is_symlink()]
    if not candidates:
        return None
    return read_report(data_dir, max(candidates, key=lambda p: p.stat().st_mtime).parent.name)


def reference_scores(data_dir: Path, report_id: str | None, columns: list[str] | None = None) -> pd.DataFrame | None:
    """The detector's test scores as its report recorded them; None when that report has none."""
    path = report_folder(data_dir, report_id) / REFERENCE_SCORES if report_id else None
    return pd.read_parquet(path, columns=columns) if path is not None and path.is_file() else None


def trained_on(data_dir: Path, report_id: str | None) -> set[str] | None:
    """Content hashes of the images the reported detector trained or validated on; None when not recorded."""
    path = report_folder(data_dir, report_id) / TRAINED_ON if report_id else None
    return set(pd.read_parquet(path)["sha256"]) if path is not None and path.is_file() else None
