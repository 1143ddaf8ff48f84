"""Durable writes: every published file and its folder are synced; a full disk, faked or real, changes
nothing and says so in one line; unfinished temporary files are cleaned at start-up."""

import errno
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from detector_pipeline.cli import main
from detector_pipeline.errors import DiskFull
from detector_pipeline.registry import artifacts, durable, live_figures
from detector_pipeline.registry import pointer as registry
from detector_pipeline.registry.hash_cache import HashCache
from detector_pipeline.tasks.labels import write_quarantine

shutil_usage = type(shutil.disk_usage("/"))


def _cache(data: Path) -> HashCache:
    return HashCache(data / "cache" / "embeddings" / "test", np.float32)


def _ledger_entry() -> dict:
    aging = {k: None for k in live_figures.AGING_KEYS} | {"worse_slices": []}
    return {"batch": "b1", "batch_version": "v", "model_version": "m", "threshold": 0.5, "n": 3, "evaluated_at": "t",
            "aging": aging, "figures": {"teacher": {"pr_auc": {"value": 0.5}}, "decisions": {"ai_share": 0.1}}}


# Each way the pipeline publishes a file: (what, the write, the file it publishes).
WRITES = {
    "model save": (lambda d: artifacts.save_model(d / "models", "probe", {"w": torch.ones(3)}, {"kind": "probe"}),
                   lambda d: next((d / "models" / "probe").glob("*/model.safetensors"), d / "models" / "probe")),
    "cache add": (lambda d: _cache(d).add(["h1", "h2"], np.ones((2, 4))), lambda d: _cache(d).folder),
    "label-batch intake": (lambda d: write_quarantine(d, "b1", "v1", pd.DataFrame({"row": [1], "reason": ["x"]})),
                           lambda d: d / "quarantine" / "b1" / "v1.parquet"),
    "scores": (lambda d: artifacts.write_bytes_atomic(d / "production" / "b1" / "m" / "scores.parquet", b"new"),
               lambda d: d / "production" / "b1" / "m" / "scores.parquet"),
    "report": (lambda d: artifacts.write_json_atomic(d / "reports" / "r1" / "report.json", {"new": True}),
               lambda d: d / "reports" / "r1" / "report.json"),
    "promotion pointer": (lambda d: registry.promote(d, {"version": "new", "folder": "models/detector/new",
                                                         "threshold": 0.5}),
                          lambda d: d / "registry" / registry.POINTER),
    "ledger": (lambda d: live_figures.append(d, _ledger_entry()), lambda d: d / live_figures.LEDGER),
}


def _previous_state(data: Path) -> dict[Path, bytes]:
    """What was there before: a promoted model with its history, a ledger line, a cache shard, an old
    report and old scores; every file's bytes."""
    registry.promote(data, {"version": "old", "folder": "models/detector/old", "threshold": 0.4})
    live_figures.append(data, _ledger_entry())
    _cache(data).add(["h0"], np.zeros((1, 4)))
    artifacts.write_bytes_atomic(data / "production" / "b1" / "m" / "scores.parquet", b"old")
    artifacts.write_json_atomic(data / "reports" / "r1" / "report.json", {"old": True})
    return {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}


def test_every_published_file_and_its_folder_are_synced(tmp_path, monkeypatch):
    synced, real_fsync = [], os.fsync

    def recording(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    for what, (write, published) in WRITES.items():
        synced.clear()
        write(tmp_path)
        target = published(tmp_path)
        folder = target if target.is_dir() else target.parent
        assert str(folder) in synced, what  # the folder, after the rename
        files = [Path(p) for p in synced if p != str(folder)]
        assert files, what  # the file itself (under its temporary name, before the rename; or the appended record)
        assert all(p.parent == folder for p in files), (what, files)


@pytest.mark.parametrize("what", list(WRITES))
def test_a_full_disk_changes_nothing_and_says_so_in_one_line(tmp_path, monkeypatch, what):
    before = _previous_state(tmp_path)

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    write, published = WRITES[what]
    with pytest.raises(DiskFull) as caught:
        write(tmp_path)
    monkeypatch.undo()
    message = str(caught.value)
    assert message.startswith("no space left on device while writing ") and "\n" not in message
    assert message.endswith("; free space and re-run: nothing was changed")
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # every file as it was, nothing added, no temporary file left
    assert registry.read_promoted(tmp_path)["version"] == "old"  # the promoted model keeps serving
    write(tmp_path)  # space again: the re-run succeeds


def test_a_promote_on_a_full_disk_is_one_line_and_exit_6(tmp_path, monkeypatch, capsys):
    from detector_pipeline_tests.cli.test_cli import save_tiny_detector

    data = tmp_path / "data"
    registry.promote(data, save_tiny_detector(data))
    other = save_tiny_detector(data, seed=1)
    monkeypatch.setenv("DETECTOR_DATA_DIR", str(data))
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
    assert main(["promote", other["version"], "--force", "drill"]) == 6
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == (f"error: no space left on device while writing {data / 'registry' / registry.HISTORY}; "
                    "free space and re-run: nothing was changed")
    monkeypatch.undo()
    assert registry.read_promoted(data)["version"] != other["version"]
    assert [r["version"] for r in registry.promotion_history(data)] == [registry.read_promoted(data)["version"]]


@pytest.fixture
def small_file_system(tmp_path):
    """A real 256 KiB tmpfs, where this machine lets the test mount one."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({made.stderr.strip() or 'mount failed'}): the faked ENOSPC "
                    "tests above cover the same paths")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_real_full_disk_changes_nothing(small_file_system):
    data = small_file_system
    with pytest.raises(DiskFull, match="no space left on device while writing"):  # a first line, too big
        durable.append_line(data / live_figures.LEDGER, "x" * 1_000_000)
    assert not (data / live_figures.LEDGER).exists()
    registry.promote(data, {"version": "old", "folder": "models/detector/old", "threshold": 0.4})
    _cache(data).add(["h0"], np.zeros((1, 4)))
    before = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    with pytest.raises(DiskFull, match="no space left on device while writing"):
        _cache(data).add([f"h{i}" for i in range(1, 200)], np.random.default_rng(0).random((199, 768)))
    with pytest.raises(DiskFull, match="no space left on device while writing"):
        artifacts.write_bytes_atomic(data / "registry" / registry.POINTER, b"x" * 1_000_000)
    assert {p: p.read_bytes() for p in data.rglob("*") if p.is_file()} == before
    assert registry.read_promoted(data)["version"] == "old"


def test_a_long_step_refuses_early_with_the_space_it_needs(tmp_path, monkeypatch):
    monkeypatch.setattr(durable.shutil, "disk_usage", lambda path: shutil_usage(total=2**30, used=2**30 - 10 * 2**20,
                                                                              free=10 * 2**20))
    with pytest.raises(DiskFull, match=r"training needs about 100 MB free in .*, and 10 MB are"):
        durable.require_free_space(tmp_path / "not-yet" / "checkpoints", 100 * 2**20, "training")
    durable.require_free_space(tmp_path, 5 * 2**20, "training")  # enough: no error


def test_unfinished_temporary_files_older_than_a_day_go_at_start_up(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    old = data / "registry" / ".promoted.json.abc123.partial"
    fresh = data / "cache" / "scores" / "m" / ".part-1.parquet.def456.partial"
    for path in (old, fresh):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"half")
    two_days_ago = time.time() - 2 * 86_400
    os.utime(old, (two_days_ago, two_days_ago))
    monkeypatch.setenv("DETECTOR_DATA_DIR", str(data))
    assert main(["models"]) == 0
    assert not old.exists() and fresh.exists()  # a write may still be using the fresh one
