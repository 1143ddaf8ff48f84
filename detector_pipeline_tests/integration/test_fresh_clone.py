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
from PIL import Image
import pytest

from detector_pipeline_tests.helpers import PROJECT_ROOT, write_tiny_dataset

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

    _the_other_readme_commands(clone, env, trained.group(1), image, tmp_path)


def _make(clone: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """make in the clone with this test's virtual environment, taken as installed (no pip run)."""
    venv = Path(sys.prefix)
    return subprocess.run(["make", f"VENV={venv}", "-o", str(venv / ".installed"), *args], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=1200)


def _the_other_readme_commands(clone: Path, env: dict, version: str, image: Path, tmp_path: Path) -> None:
    """What the README and the docs' command table give, each run once, at toy scale where it must be."""
    models = _cli(clone, env, "models", "--json")
    assert models.returncode == 0 and version in models.stdout, models.stderr[-2000:]
    lineage = _cli(clone, env, "lineage", version)
    assert lineage.returncode == 0 and version in lineage.stdout, lineage.stderr[-2000:]
    promote = _cli(clone, env, "promote", version)  # through the gate, against itself
    assert promote.returncode == 0 and f"promoted detector: {version}" in promote.stdout, promote.stderr[-2000:]
    exported = _cli(clone, env, "export", version, "--format", "onnx")  # beside its weights: score finds it there
    assert exported.returncode == 0 and "parity: max" in exported.stdout, exported.stderr[-2000:]
    onnx = _cli(clone, env, "score", str(image), "--engine", "onnx", "--out", str(tmp_path / "onnx.parquet"))
    assert onnx.returncode == 0, onnx.stderr[-2000:]
    assert pd.read_parquet(tmp_path / "onnx.parquet")["p_ai"].notna().all()
    demo_help = _cli(clone, env, "demo", "build", "--help")
    assert demo_help.returncode == 0 and "--out" in demo_help.stdout

    # make bench with its own flags (the recipe as `make -n` prints it), at toy scale: the tiny profile on
    # a tiny labelled set, and two demo photographs for the decode stage instead of the 345 MB download
    recipe = [line for line in _make(clone, "-n", "bench").stdout.splitlines() if " bench " in line]
    assert len(recipe) == 1 and "--decode" in recipe[0] and "--probe-fidelity" in recipe[0], recipe
    photos = tmp_path / "photos"
    photos.mkdir()
    for jpeg in sorted((clone / "data" / "demo" / "images").glob("*.jpg"))[:2]:
        with Image.open(jpeg) as image:  # a phone photograph's size: a crop is a sliver of it
            image.convert("RGB").resize((1600, 1200)).save(photos / jpeg.name, quality=90)
    labels = write_tiny_dataset(tmp_path / "bench_set", n=24)
    bench_env = {**env, "DETECTOR_LABELS": str(labels)}
    toy = ["--profile", "tiny", "--images", "8", "--memory-images", "4", "--photos", str(photos), "--cache-sizes", "100,1000",
           "--out", str(tmp_path / "bench.json")]
    bench = subprocess.run([*recipe[0].split(), *toy], cwd=clone, env=bench_env, capture_output=True, text=True,
                           timeout=1800)
    assert bench.returncode == 0, bench.stderr[-3000:]
    results = json.loads((tmp_path / "bench.json").read_text())
    assert {"embedding", "training", "scoring"} <= set(results["stages"]) and "decode" in results
    assert "probe_fidelity" in results["engines"] and set(results["cache_growth"]["sizes"]) == {"100", "1000"}

    docs = _make(clone, "docs", env=env)
    assert docs.returncode == 0, docs.stderr[-2000:]
    assert (clone / "site" / "index.html").is_file()
    clean = _make(clone, "clean", env=env)
    assert clean.returncode == 0 and not (clone / "data" / "models").exists()
    assert (clone / "data" / "demo" / "labels.parquet").is_file()  # the shipped demo set stays
    assert _git("status", "--porcelain", cwd=clone) == ""
