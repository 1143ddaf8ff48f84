"""The real photographs: camera photographs in Debian and PyPI packages, listed in photos.tsv.

Each row was looked at by a person: photographs only (no paintings, renders, composites, screenshots
or illustrations), with the subject it shows. Rows whose `held_out` is yes come from sources kept out
of training as a whole: the report's false-positive rate on real photographs of a kind the detector
never saw.
"""

import csv
from pathlib import Path

from PIL import Image, ImageOps

from detector_pipeline.demo_data.debian_copyright import licence_for, parse_stanzas
from detector_pipeline.demo_data.families import Photo

PHOTO_LIST = Path(__file__).with_name("photos.tsv")
SMALLEST_SIDE = 256  # every crop is at least this large


def photo_rows() -> list[dict]:
    with open(PHOTO_LIST, newline="") as f:
        return list(csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t"))


def debian_packages() -> dict[str, str]:
    return {r["package"]: r["version"] for r in photo_rows() if r["source"] == "deb"}


def pypi_packages() -> dict[str, str]:
    return {r["package"]: r["version"] for r in photo_rows() if r["source"] == "pypi"}


def _deb_licence(deb_root: Path, row: dict) -> tuple[str, str]:
    copyright_file = deb_root / "usr/share/doc" / row["package"] / "copyright"
    if not copyright_file.exists():
        return row["licence"], row["package"] + " authors"
    stanza = licence_for(parse_stanzas(copyright_file.read_text(errors="replace")), row["path"])
    # not machine-readable: the licence a person read in it, as photos.tsv records it
    return (stanza.license, stanza.copyright) if stanza else (row["licence"], row["package"] + " authors")


def load_photos(deb_root: Path, pypi: dict[str, Path]) -> list[Photo]:
    photos = []
    for row in photo_rows():
        if row["source"] == "deb":
            path = deb_root / row["path"].lstrip("/")
            licence, holder = _deb_licence(deb_root, row)
            package = f"{row['package']}={row['version']}"
        else:
            path = pypi[row["package"]] / row["path"].lstrip("/")
            licence, holder = row["licence"], f"{row['package']} contributors"
            package = f"{row['package']}=={row['version']}"
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image).convert("RGB")  # as a viewer shows it
        if min(image.size) < SMALLEST_SIDE:
            continue
        photos.append(Photo(image, f"photo:{row['package']}/{_name(row['path'])}", package, row["path"], licence,
                            holder, row["subject"], row.get("held_out", "") == "yes"))
    return photos


def _name(path: str) -> str:
    """Plasma keeps every wallpaper as <Name>/contents/images/<size>.jpg: the name is the folder's."""
    return path.split("/")[-4] if "contents/images" in path else Path(path).name
