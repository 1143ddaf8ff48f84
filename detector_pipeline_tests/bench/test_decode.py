"""bench/decode.py: the photographs the decode stage reads, and its two data paths."""

from pathlib import Path

from PIL import Image

from detector_pipeline.bench import decode
from detector_pipeline.demo_data import fetch
from detector_pipeline.demo_data.photo_sources import photo_rows


def test_photo_files_are_the_debian_rows_of_the_photo_list(tmp_path, monkeypatch):
    deb_rows = [r for r in photo_rows() if r["source"] == "deb"]
    assert deb_rows, "photos.tsv lists no Debian photographs"
    root = tmp_path / "debroot"
    present = deb_rows[: max(1, len(deb_rows) // 2)]
    for row in present:
        target = root / row["path"].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48), (10, 20, 30)).save(target, "JPEG")
    monkeypatch.setattr(fetch, "fetch_debian_packages", lambda scratch: root)

    files = decode.photo_files(tmp_path / "scratch")

    assert sorted(files) == sorted(root / r["path"].lstrip("/") for r in present)
    assert all(isinstance(f, Path) and f.is_file() for f in files)


def test_photographs_smaller_than_a_crop_are_named(tmp_path):
    small, large = tmp_path / "small.jpg", tmp_path / "large.jpg"
    Image.new("RGB", (decode.CROP - 1, 600)).save(small)
    Image.new("RGB", (600, decode.CROP)).save(large)
    assert decode.too_small([small, large]) == [small]
