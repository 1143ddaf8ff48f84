"""Publishing files so that a reader never sees half of one and a crash loses nothing reported done.

Once a command or an asset has reported success, what it wrote survives a crash: a file is written
beside its target, synced, renamed into place, and the folder synced (the order SQLite and
PostgreSQL rely on); an append-only record is synced line by line. A write that finds the disk full
raises DiskFull and leaves what it would have replaced as it was. No torch here: the plain CLI
commands use it."""

import contextlib
import errno
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from detector_pipeline.errors import DiskFull

log = logging.getLogger(__name__)

PARTIAL = ".partial"
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def no_space(exc: BaseException) -> bool:
    """A write that failed for want of space, whichever library did the writing (pyarrow and
    safetensors give the OS's words, not its errno)."""
    return getattr(exc, "errno", None) in NO_SPACE or any(
        words in str(exc) for words in ("No space left on device", "os error 28", "Disk quota exceeded"))


def disk_full(target: Path) -> DiskFull:
    return DiskFull(f"no space left on device while writing {target}; free space and re-run: nothing was changed")


def fsync_path(path: Path) -> None:
    """Flushes a file, or a folder's entries, to the disk."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if os.path.isdir(path) else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yields a temporary path beside `target`; only if the block succeeds is it synced, renamed into
    place and the folder synced. DiskFull when the disk filled: `target` is as it was."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=PARTIAL, dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if not os.path.islink(tmp):
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
            fsync_path(Path(tmp))
        os.replace(tmp, target)
        fsync_path(target.parent)
    except Exception as exc:
        if no_space(exc):
            raise disk_full(target) from None
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def append_line(path: Path, line: str) -> None:
    """One line added to an append-only record (a ledger, a history), synced; on a full disk the file
    is cut back to what it was and DiskFull raised."""
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    with open(path, "a") as record:
        start = record.tell()
        try:
            record.write(line + "\n")
            record.flush()
            os.fsync(record.fileno())
            if created:  # the new file's name in its folder, too
                fsync_path(path.parent)
        except OSError as exc:
            with contextlib.suppress(OSError):  # as it was: absent, or its lines before this one
                if created:
                    os.unlink(path)
                else:
                    os.truncate(path, start)
            if no_space(exc):
                raise disk_full(path) from None
            raise


def require_free_space(folder: Path, needed: int, what: str) -> None:
    """Refuses a long step early when its folder's disk lacks the space it will need."""
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free < needed:
        raise DiskFull(f"{what} needs about {needed / 2**20:,.0f} MB free in {folder}, and {free / 2**20:,.0f} MB "
                       "are: free space and re-run: nothing was changed")


def remove_stale_partials(root: Path, older_than_s: float = 86_400) -> list[Path]:
    """Temporary files of writes killed before they finished (a process killed inside atomic_path), at
    start-up: those older than a day, when no write can still be using them."""
    removed, cutoff = [], time.time() - older_than_s
    for path in Path(root).rglob(f".*{PARTIAL}") if Path(root).is_dir() else ():
        with contextlib.suppress(FileNotFoundError):
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
    if removed:
        log.warning("removed %d unfinished temporary file(s) older than a day under %s, e.g. %s",
                    len(removed), root, removed[0])
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(target: Path, obj: object) -> None:
    write_bytes_atomic(target, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())
