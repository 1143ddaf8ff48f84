"""`promote` killed with SIGKILL at each point where it writes, and two promotions from two processes
at once: the pointer is the old one or the new one, whole; the history lists the promotions that
took effect, each once; the lock dies with its holder; the next promotion works."""

import fcntl
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from detector_pipeline.registry import pointer as registry

pytestmark = pytest.mark.kill

# Runs in a child process: promotes `version` and dies by SIGKILL at `point`.
CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from detector_pipeline.registry import durable, pointer

    data, version, point = Path(sys.argv[1]), sys.argv[2], sys.argv[3]

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "after_history_line":  # the history line is written and synced, the pointer not yet
        pointer.write_json_atomic = die
    elif point == "before_rename":  # the new pointer is complete in its temporary file
        durable.os.replace = die
    elif point == "in_history_line":  # half of the history line is on disk
        def half_then_die(path, line):
            with open(path, "a") as f:
                f.write(line[: len(line) // 2])
                f.flush()
                os.fsync(f.fileno())
            die()
        pointer.append_line = half_then_die
    elif point == "start_file":  # no kill: wait for the start file, then promote (two at once)
        while not (data / "go").exists():
            pass
    pointer.promote(data, {"version": version, "folder": f"models/detector/{version}", "threshold": 0.5})
""")


def _child(data: Path, version: str, point: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(data), version, point])


def _lock_is_free(data: Path) -> bool:
    with open(registry.registry_dir(data) / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


@pytest.mark.parametrize("point", ["after_history_line", "before_rename", "in_history_line"])
def test_a_promote_killed_half_way_leaves_the_old_pointer_and_a_history_that_took_effect(tmp_path, point):
    registry.promote(tmp_path, {"version": "v1", "folder": "models/detector/v1", "threshold": 0.5})
    before = registry.read_promoted(tmp_path)

    child = _child(tmp_path, "v2", point)
    assert child.wait(60) == -9  # SIGKILL, no cleanup

    assert registry.read_promoted(tmp_path) == before  # the old pointer, whole
    assert [r["version"] for r in registry.promotion_history(tmp_path)] == ["v1"]  # v2 never took effect
    assert _lock_is_free(tmp_path)
    registry.promote(tmp_path, {"version": "v3", "folder": "models/detector/v3", "threshold": 0.5})
    lines = (registry.registry_dir(tmp_path) / registry.HISTORY).read_text().splitlines()
    assert [json.loads(line)["version"] for line in lines] == ["v1", "v3"]  # the cut-off line is gone from the file
    assert json.loads(lines[-1])["previous_version"] == "v1"
    assert registry.read_promoted(tmp_path)["version"] == "v3"


def test_the_first_promote_killed_half_way_leaves_nothing_promoted(tmp_path):
    assert _child(tmp_path, "v1", "after_history_line").wait(60) == -9
    assert registry.read_promoted(tmp_path) is None and registry.promotion_history(tmp_path) == []
    registry.promote(tmp_path, {"version": "v1", "folder": "models/detector/v1", "threshold": 0.5})
    assert [r["previous_version"] for r in registry.promotion_history(tmp_path)] == [None]


def test_two_promote_processes_at_once_take_turns(tmp_path):
    registry.promote(tmp_path, {"version": "v0", "folder": "models/detector/v0", "threshold": 0.5})
    children = [_child(tmp_path, version, "start_file") for version in ("a", "b")]
    time.sleep(1.0)  # both waiting
    (tmp_path / "go").touch()
    assert [c.wait(60) for c in children] == [0, 0]
    history = registry.promotion_history(tmp_path)
    assert sorted(r["version"] for r in history) == ["a", "b", "v0"]
    assert [r["previous_version"] for r in history] == [None, "v0", history[1]["version"]]  # a chain, not a fork
    assert registry.read_promoted(tmp_path)["version"] == history[-1]["version"]
    assert _lock_is_free(tmp_path)
