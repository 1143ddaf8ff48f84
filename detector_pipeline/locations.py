"""Where the project's own files are; no Dagster here, so the CLI's plain commands start without it."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
