"""Decoding images safely: bombs refused before decoding, every mode converted to RGB, EXIF applied."""

import warnings
from pathlib import Path

from PIL import Image, ImageOps

MAX_PIXELS = 80_000_000  # above this an image is refused before its pixels are decoded
MIN_SIDE = 16


class BadImage(ValueError):
    """An image that can't be used; the message is the quarantine reason."""


def inspect_image(path: Path) -> tuple[int, int]:
    """(width, height) after EXIF rotation, checking the file fully decodes; BadImage otherwise."""
    image = open_rgb(path)
    return image.size


def open_rgb(path: Path) -> Image.Image:
    """The image as 8-bit RGB, upright per its EXIF orientation."""
    try:
        if path.stat().st_size == 0:
            raise BadImage("empty file")
    except FileNotFoundError:
        raise BadImage("missing file") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise BadImage(f"decompression bomb: {width}x{height} declared")
                if getattr(image, "n_frames", 1) > 1:
                    raise BadImage(f"animated image ({image.n_frames} frames)")
                if min(width, height) < MIN_SIDE:
                    raise BadImage(f"too small: {width}x{height}")
                image.load()
                return _to_rgb(ImageOps.exif_transpose(image))
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage(f"decompression bomb: {exc}") from None
    except Image.UnidentifiedImageError:
        raise BadImage("not an image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadImage(f"corrupt image: {exc}") from None


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits instead of clipping.
        image = image.point(lambda v: v / 256).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
