"""One encoding for every demo image, whatever its class, so the format carries no label."""

import io

import numpy as np
from PIL import Image

JPEG_QUALITY = 90
JPEG_SUBSAMPLING = "4:2:0"
CROP_SIDES = (256, 400)  # every demo image is a square of a side drawn uniformly from this range


def encode_jpeg(image: Image.Image) -> bytes:
    """Baseline JPEG, fixed quality and chroma subsampling, no EXIF/ICC/comment."""
    buf = io.BytesIO()
    rgb = image.convert("RGB")
    rgb.info.clear()
    rgb.save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=JPEG_SUBSAMPLING, optimize=False)
    return buf.getvalue()


def random_side(rng: np.random.Generator, multiple_of: int = 1, at_most: int | None = None) -> int:
    lo, hi = CROP_SIDES
    if at_most is not None:
        hi = min(hi, at_most)
    side = int(rng.integers(lo, hi + 1))
    return side - side % multiple_of


def sample_square_crops(
    size: tuple[int, int], n: int, rng: np.random.Generator, multiple_of: int = 1, max_overlap: float = 0.25
) -> list[tuple[int, int, int]]:
    """Up to n (left, top, side) squares inside an image of `size`, overlapping each other by at most
    `max_overlap` of their area; native resolution, so never larger than the short side."""
    width, height = size
    boxes: list[tuple[int, int, int]] = []
    for _ in range(n * 30):
        if len(boxes) == n:
            break
        side = random_side(rng, multiple_of, at_most=min(width, height))
        if side < CROP_SIDES[0] - multiple_of:
            break
        left = int(rng.integers(0, width - side + 1))
        top = int(rng.integers(0, height - side + 1))
        if all(_overlap((left, top, side), b) <= max_overlap for b in boxes):
            boxes.append((left, top, side))
    return boxes


def _overlap(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    w = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0, min(a[1] + a[2], b[1] + b[2]) - max(a[1], b[1]))
    return w * h / min(a[2], b[2]) ** 2


def crop(image: Image.Image, box: tuple[int, int, int]) -> Image.Image:
    left, top, side = box
    return image.crop((left, top, left + side, top + side))
