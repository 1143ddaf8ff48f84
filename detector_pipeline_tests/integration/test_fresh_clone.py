"""What the repository itself ships: a fresh clone must run the first-run path. Tests that only use
temporary folders can't see a generated file committed by mistake (a promotion pointer, say)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from detector_pipeline_tests.helpers import PROJECT_ROOT

SHIPPED_UNDER_DATA = ("data/demo/",)


def _git(*args: str, cwd: Path = PROJECT_ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_nothing_the_pipeline_writes_is_tracked():
    tracked = _git("ls-files", "data").split()
    assert tracked and [p for p in tracked if not p.startswith(SHIPPED_UNDER_DATA)] == []


def test_no_committed_file_holds_a_machine_path():
    hits = subprocess.run(["git", "grep", "-l", "-I", "-E", r'"/(work|home|root|tmp)/', "--", ":!*.md"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True).stdout.split()
    assert hits == []


def _cli(clone: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "detector_pipeline.cli", *args], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=1200)


@pytest.mark.slow  # `detector-pipeline run --profile tiny` on a clone: the whole chain
def test_a_fresh_clone_trains_promotes_what_it_trained_and_scores(tmp_path):
    """The README's first-run path on a clone of the committed tree (tiny profile, the shipped demo
    labels): the run promotes the detector it trained, and scoring works right after."""
    clone, home = tmp_path / "clone", tmp_path / "dagster_home"
    _git("clone", "-q", "--no-hardlinks", str(PROJECT_ROOT), str(clone))
    home.mkdir()
    shutil.copy(clone / "deploy" / "dagster.local.yaml", home / "dagster.yaml")  # as `make demo` does
    env = {k: v for k, v in os.environ.items() if not k.startswith("DETECTOR_")}
    env.update(PYTHONPATH=str(clone), DAGSTER_HOME=str(home), HF_HUB_OFFLINE="1")

    run = _cli(clone, env, "run", "--profile", "tiny")
    assert run.returncode == 0, run.stderr[-3000:]
    trained = re.search(r"^promoted detector: (\w+) \(trained by this run\)$", run.stdout, re.M)
    assert trained, run.stdout
    pointer = json.loads((clone / "data" / "registry" / "promoted.json").read_text())
    assert pointer["version"] == trained.group(1) and not Path(pointer["folder"]).is_absolute()

    image = sorted((clone / "data" / "demo" / "images").glob("*.jpg"))[0]
    score = _cli(clone, env, "score", str(image), "--out", str(tmp_path / "scores.parquet"), "--quiet")
    assert score.returncode == 0, score.stderr[-3000:]
    scored = pd.read_parquet(tmp_path / "scores.parquet")
    assert scored["model_version"].tolist() == [trained.group(1)] and scored["error"].isna().all()
    assert _git("status", "--porcelain", cwd=clone) == ""  # everything the run wrote is ignored
