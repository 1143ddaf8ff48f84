"""Where the CLI finds the data folder."""

import os
from pathlib import Path

from detector_pipeline.locations import PROJECT_ROOT


def data_dir() -> Path:
    return Path(os.environ.get("DETECTOR_DATA_DIR", PROJECT_ROOT / "data"))
