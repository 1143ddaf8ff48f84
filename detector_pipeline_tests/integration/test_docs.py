"""The documentation: the MkDocs site builds strictly (no broken link or anchor, no missing snippet, no
page left out of nav), the README stays short, its links lead somewhere, and the commands the README
and the pages give exist."""

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import markdown

from detector_pipeline_tests.helpers import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
README_LIMIT_BYTES = 15_000


class _Hrefs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs += [value for name, value in attrs if name == "href" and value]


def _relative_links(path: Path) -> list[str]:
    parser = _Hrefs()
    parser.feed(markdown.markdown(path.read_text(encoding="utf-8"), extensions=["tables"]))
    return [href for href in parser.hrefs if not urlsplit(href).scheme and not href.startswith("#")]


def _documented_text() -> str:
    pages = sorted((PROJECT_ROOT / "docs").rglob("*.md"))
    return "\n".join(p.read_text(encoding="utf-8") for p in [README, *pages])


def test_site_builds_strictly(tmp_path: Path):
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site"),
                            "--config-file", str(PROJECT_ROOT / "mkdocs.yml")],
                           cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert built.returncode == 0, built.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").is_file()


def test_readme_is_short():
    assert README.stat().st_size < README_LIMIT_BYTES


def test_every_relative_link_in_the_readme_exists():
    links = _relative_links(README)
    assert links, "the README links to the documentation pages"
    missing = [link for link in links if not (PROJECT_ROOT / urlsplit(link).path).exists()]
    assert missing == []


def test_every_make_target_the_docs_give_exists():
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z]+):", makefile, flags=re.MULTILINE))
    given = set(re.findall(r"(?:`|^ {4})make ([a-z]+)", _documented_text(), flags=re.MULTILINE))
    assert {"demo", "test", "ui", "docs"} <= given
    assert given - targets == set()


def test_every_subcommand_the_docs_give_exists():
    usage = subprocess.run([sys.executable, "-m", "detector_pipeline.cli", "--help"], cwd=PROJECT_ROOT,
                           capture_output=True, text=True, timeout=120)
    assert usage.returncode == 0, usage.stderr[-3000:]
    subcommands = set(re.search(r"\{([a-z,]+)\}", usage.stdout).group(1).split(","))
    given = set(re.findall(r"detector-pipeline ([a-z]+)", _documented_text()))
    assert {"run", "models", "lineage", "score"} <= given
    assert given - subcommands == set()
