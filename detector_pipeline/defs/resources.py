"""Where the data is and which profile runs, as a Dagster resource."""

import os
import subprocess
from pathlib import Path

import dagster as dg

from detector_pipeline.config.profiles import Profile, get_profile
from detector_pipeline.data.batches import BatchLocation, batch_location
from detector_pipeline.locations import PROJECT_ROOT


class PipelineSettings(dg.ConfigurableResource):
    """profile: `demo` (2 CPU cores, offline weights), `full` (the article's recipe, GPU) or `tiny`."""

    profile: str = "demo"
    labels_path: str = str(PROJECT_ROOT / "data/demo/labels.parquet")
    images_root: str = str(PROJECT_ROOT / "data/demo")
    data_dir: str = str(PROJECT_ROOT / "data")
    weights_dir: str = str(PROJECT_ROOT / "data/weights")
    device: str = "auto"
    incoming_dir: str = str(PROJECT_ROOT / "data/incoming")
    feed_dir: str = str(PROJECT_ROOT / "data/feed")
    target_precision: float = 0.95
    # Hugging Face image-classification models to compare against, as "model_id:positive_label", comma-separated.
    offtheshelf_models: str = "Organika/sdxl-detector:artificial"

    def resolved_profile(self) -> Profile:
        return get_profile(self.profile, Path(self.weights_dir)).with_overrides(device=self.device)

    @property
    def data(self) -> Path:
        return Path(self.data_dir)

    def batch_location(self, batch: str) -> BatchLocation:
        base = BatchLocation(Path(self.labels_path), Path(self.images_root))
        return batch_location(batch, base, Path(self.incoming_dir))

    @classmethod
    def from_env(cls) -> "PipelineSettings":
        """DETECTOR_PROFILE, DETECTOR_LABELS, DETECTOR_IMAGES_ROOT, DETECTOR_DATA_DIR, DETECTOR_WEIGHTS_DIR,
        DETECTOR_DEVICE, DETECTOR_INCOMING_DIR, DETECTOR_FEED_DIR override the defaults."""
        env = {
            "profile": "DETECTOR_PROFILE", "labels_path": "DETECTOR_LABELS", "images_root": "DETECTOR_IMAGES_ROOT",
            "data_dir": "DETECTOR_DATA_DIR", "weights_dir": "DETECTOR_WEIGHTS_DIR", "device": "DETECTOR_DEVICE",
            "incoming_dir": "DETECTOR_INCOMING_DIR", "feed_dir": "DETECTOR_FEED_DIR",
        }
        return cls(**{field: os.environ[var] for field, var in env.items() if os.environ.get(var)})


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
