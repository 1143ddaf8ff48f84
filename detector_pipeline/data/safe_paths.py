"""Confine label paths to the data root: nothing outside it is ever opened."""

import os
from pathlib import Path

MAX_PATH_BYTES = 1024


class UnsafePath(ValueError):
    """A label path that must not be opened; the message is the quarantine reason."""


def resolve_inside(root: Path, relative: object) -> Path:
    """The real path of `relative` under `root`, or UnsafePath saying why not.

    Resolving follows symlinks, so a link that leads outside the root is refused like `..` is.
    """
    if relative is None or (isinstance(relative, float) and relative != relative):
        raise UnsafePath("null path")
    if isinstance(relative, bytes):  # a binary parquet column
        try:
            relative = relative.decode("utf-8")
        except UnicodeDecodeError:
            raise UnsafePath("path is not valid UTF-8") from None
    if not isinstance(relative, str):
        raise UnsafePath(f"path is not text ({type(relative).__name__})")
    if not relative.strip():
        raise UnsafePath("empty path")
    if "\x00" in relative:
        raise UnsafePath("NUL byte in path")
    try:
        encoded = relative.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafePath("path is not valid UTF-8") from None
    if len(encoded) > MAX_PATH_BYTES:
        raise UnsafePath(f"path longer than {MAX_PATH_BYTES} bytes")
    if os.path.isabs(relative):
        raise UnsafePath("absolute path")
    real_root = Path(os.path.realpath(root))
    candidate = Path(os.path.realpath(real_root / relative))
    if candidate != real_root and real_root not in candidate.parents:
        raise UnsafePath("path escapes the data root")
    return candidate
