"""Per-file licence and copyright from a machine-readable debian/copyright (DEP-5) file."""

import fnmatch
import posixpath
from dataclasses import dataclass


@dataclass(frozen=True)
class Stanza:
    patterns: tuple[str, ...]
    copyright: str
    license: str


def parse_stanzas(text: str) -> list[Stanza]:
    stanzas = []
    for block in text.split("\n\n"):
        fields: dict[str, list[str]] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key].append(line.strip())
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = [value.strip()]
        if "Files" in fields and "License" in fields:
            patterns = tuple(p for chunk in fields["Files"] for p in chunk.split())
            copyright_ = "; ".join(c for c in fields.get("Copyright", []) if c)
            stanzas.append(Stanza(patterns, copyright_, fields["License"][0]))
    return stanzas


def licence_for(stanzas: list[Stanza], installed_path: str) -> Stanza | None:
    """The stanza for a file, matched on its base name (the installed path differs from the source
    tree's) or, for a folder pattern (`original-files/*`), on that folder anywhere in the installed
    path; later stanzas win, as DEP-5 says, and `Files: *` is the fallback. None for a copyright
    file that is not machine-readable."""
    best = None
    for stanza in stanzas:
        if any(_matches(p, installed_path) for p in stanza.patterns):
            best = stanza
    if best is None:
        best = next((s for s in stanzas if "*" in s.patterns), None)
    return best


def _matches(pattern: str, installed_path: str) -> bool:
    if pattern == "*":
        return False  # the fallback, not a match
    name, base, folder = posixpath.basename(installed_path), posixpath.basename(pattern), posixpath.dirname(pattern)
    if "*" not in base:
        return fnmatch.fnmatch(name, base)
    return bool(folder) and f"/{folder}/" in installed_path and fnmatch.fnmatch(name, base)
