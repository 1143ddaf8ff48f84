"""config/environment.py: one reading of the environment, the same for the CLI and the definitions."""

import re
from pathlib import Path

from detector_pipeline.cli import commands
from detector_pipeline.cli.paths import data_dir
from detector_pipeline.config.environment import read_environment
from detector_pipeline.defs.resources import PipelineSettings
from detector_pipeline.locations import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "detector_pipeline"


def test_defaults_without_variables():
    env = read_environment({})
    assert env.profile == "demo" and env.device == "auto"
    assert env.labels_path == PROJECT_ROOT / "data/demo/labels.parquet"
    assert env.images_root == env.labels_path.parent  # one rule: the labels file's folder
    assert env.data_dir == PROJECT_ROOT / "data" and env.dagster_home is None and not env.hub_offline


def test_variables_override_and_empty_ones_count_as_unset(tmp_path):
    env = read_environment({"DETECTOR_LABELS": str(tmp_path / "l.parquet"), "DETECTOR_DATA_DIR": "",
                            "DETECTOR_PROFILE": "tiny", "HF_HUB_OFFLINE": "1", "DETECTOR_EXECUTOR": "k8s"})
    assert env.labels_path == tmp_path / "l.parquet" and env.images_root == tmp_path
    assert env.data_dir == PROJECT_ROOT / "data"
    assert env.profile == "tiny" and env.hub_offline and env.executor == "k8s"
    assert env.with_profile(None).profile == "tiny" and env.with_profile("demo").profile == "demo"


def test_the_cli_and_the_definitions_resolve_the_same_folders(tmp_path, monkeypatch):
    labels = tmp_path / "team" / "labels.parquet"
    monkeypatch.setenv("DETECTOR_LABELS", str(labels))
    monkeypatch.setenv("DETECTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DETECTOR_IMAGES_ROOT", raising=False)
    settings = PipelineSettings.of(read_environment())
    assert commands._labels_and_root() == (Path(settings.labels_path), Path(settings.images_root))
    assert data_dir() == Path(settings.data_dir) == tmp_path / "data"
    assert Path(settings.images_root) == labels.parent


def test_the_resource_defaults_are_the_environment_defaults():
    defaults = read_environment({})
    assert PipelineSettings() == PipelineSettings.of(defaults)


def test_only_the_environment_module_reads_the_process_environment():
    readers = {path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py")
               if re.search(r"os\.environ|os\.getenv", path.read_text())}
    # torchrun hands each process its rank in LOCAL_RANK: the DDP job's own protocol
    assert readers == {"config/environment.py", "training/ddp.py"}
