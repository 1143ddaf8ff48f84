"""Processing histories: what happens to an image between its camera or generator and the feed.

Uploaders resize, platforms recompress, some images arrive small. Every demo image, whatever its
class, draws its history from the same distribution, so a history can never give the class away;
the shortcut baselines check that it does not (`processing` is a column of the labels).
"""

import io

import numpy as np
from PIL import Image

HISTORIES = {  # name -> share of the images of every family
    "none": 0.5,
    "recompressed": 0.2,  # saved as JPEG at a lower quality once before the final encoding
    "downscaled": 0.2,  # resized by its uploader to 55-85 % of its side
    "downscaled+recompressed": 0.1,
}
RECOMPRESS_QUALITY = (60, 85)
DOWNSCALE_FACTOR = (0.55, 0.85)
SMALLEST_SIDE = 160


def draw_history(rng: np.random.Generator) -> str:
    names = list(HISTORIES)
    return names[int(rng.choice(len(names), p=list(HISTORIES.values())))]


def apply_history(image: Image.Image, history: str, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """The image as the feed receives it, and the history in words (for the provenance)."""
    steps = []
    if "downscaled" in history:
        factor = rng.uniform(*DOWNSCALE_FACTOR)
        side = max(SMALLEST_SIDE, round(min(image.size) * factor))
        factor = side / min(image.size)
        size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        image = image.resize(size, Image.Resampling.LANCZOS)
        steps.append(f"resized to {size[0]}x{size[1]} (Lanczos)")
    if "recompressed" in history:
        quality = int(rng.integers(RECOMPRESS_QUALITY[0], RECOMPRESS_QUALITY[1] + 1))
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="JPEG", quality=quality)
        image = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
        steps.append(f"JPEG quality {quality}")
    return image, ", ".join(steps) or "none"
