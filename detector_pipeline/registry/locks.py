"""A file lock for appends and caches that several runs (or pods on one volume) share; no torch, so
the CLI's plain commands can take it."""

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` + ".lock": two runs at once (sensor and schedule) that add to one
    cache take turns, each re-reading what the other wrote."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
