"""Decoding images safely: bombs refused before decoding, every mode converted to RGB, EXIF applied."""

import io
import os
import stat
import warnings
from pathlib import Path

from PIL import Image, ImageOps

MAX_PIXELS = 80_000_000  # above this an image is refused before its pixels are decoded
MIN_SIDE = 16


class BadImage(ValueError):
    """An image that can't be used; the message is the quarantine reason."""


_NOT_REGULAR = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
                stat.S_IFBLK: "a block device", stat.S_IFDIR: "a folder"}


def read_regular_file(path: Path) -> bytes:
    """A file's bytes. Opened without blocking and checked on the open descriptor: a FIFO, socket or
    device is refused (BadImage), never waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise BadImage("missing file") from None
    except OSError as exc:  # a socket can't be opened at all (ENXIO)
        raise BadImage(f"not a regular file: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise BadImage(f"not a regular file: {_NOT_REGULAR.get(stat.S_IFMT(mode), 'a special file')}")
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read()
    finally:
        os.close(fd)


def open_rgb(path: Path) -> Image.Image:
    """The image as 8-bit RGB, upright per its EXIF orientation."""
    return decode_rgb(read_regular_file(path))


def decode_rgb(data: bytes) -> Image.Image:
    """Encoded bytes as 8-bit RGB, upright per the EXIF orientation; BadImage when unusable."""
    if not data:
        raise BadImage("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
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
