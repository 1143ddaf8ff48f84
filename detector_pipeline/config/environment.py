"""The one place the process environment is read. The CLI and the Dagster definitions both start from
`read_environment()`, so they resolve the same folders with the same defaults.

| variable | field | default |
| --- | --- | --- |
| DETECTOR_PROFILE | profile | demo |
| DETECTOR_LABELS | labels_path | data/demo/labels.parquet |
| DETECTOR_IMAGES_ROOT | images_root | the labels file's folder |
| DETECTOR_DATA_DIR | data_dir | data |
| DETECTOR_WEIGHTS_DIR | weights_dir | data/weights |
| DETECTOR_DEVICE | device | auto |
| DETECTOR_INCOMING_DIR | incoming_dir | data/incoming |
| DETECTOR_FEED_DIR | feed_dir | data/feed |
| DETECTOR_EXECUTOR | executor | in_process below 8 cores, else multiprocess |
| DETECTOR_RETRAIN_CRON | retrain_cron | 0 2 * * * |
| DAGSTER_HOME | dagster_home | none (a throwaway instance) |
| HF_HUB_OFFLINE | hub_offline | false |
| USER | user | reviewer (whose verdicts the review page records, unless --reviewer says) |

A relative path in a variable is taken from the working directory. An empty variable counts as unset.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from detector_pipeline.locations import PROJECT_ROOT

SMALL_MACHINE_CORES = 8
EXECUTORS = ("in_process", "multiprocess", "k8s")


@dataclass(frozen=True)
class Environment:
    profile: str
    labels_path: Path
    images_root: Path
    data_dir: Path
    weights_dir: Path
    device: str
    incoming_dir: Path
    feed_dir: Path
    executor: str
    retrain_cron: str
    dagster_home: Path | None
    hub_offline: bool
    user: str = "reviewer"

    def with_profile(self, profile: str | None) -> "Environment":
        """The same environment with the profile a command line chose, where it chose one."""
        return replace(self, profile=profile) if profile else self


def read_environment(environ: Mapping[str, str] | None = None) -> Environment:
    env = {k: v for k, v in (os.environ if environ is None else environ).items() if v}

    def path(var: str, default: Path) -> Path:
        return Path(env[var]) if var in env else default

    data = path("DETECTOR_DATA_DIR", PROJECT_ROOT / "data")
    labels = path("DETECTOR_LABELS", PROJECT_ROOT / "data/demo/labels.parquet")
    executor = env.get("DETECTOR_EXECUTOR") or (
        "in_process" if (os.cpu_count() or 1) < SMALL_MACHINE_CORES else "multiprocess")
    return Environment(
        profile=env.get("DETECTOR_PROFILE", "demo"),
        labels_path=labels,
        images_root=path("DETECTOR_IMAGES_ROOT", labels.parent),
        data_dir=data,
        weights_dir=path("DETECTOR_WEIGHTS_DIR", PROJECT_ROOT / "data/weights"),
        device=env.get("DETECTOR_DEVICE", "auto"),
        incoming_dir=path("DETECTOR_INCOMING_DIR", PROJECT_ROOT / "data/incoming"),
        feed_dir=path("DETECTOR_FEED_DIR", PROJECT_ROOT / "data/feed"),
        executor=executor,
        retrain_cron=env.get("DETECTOR_RETRAIN_CRON", "0 2 * * *"),
        dagster_home=Path(env["DAGSTER_HOME"]) if "DAGSTER_HOME" in env else None,
        hub_offline=env.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"),
        user=env.get("USER", "reviewer"),
    )
