"""Native crops from JPEGs without decoding the whole photograph.

A 224 px crop of a 4000x3000 photo needs about 0.4 % of its pixels. libjpeg-turbo's lossless crop
(tjTransform) cuts the DCT coefficients of the MCUs under a region out of the file without an inverse
DCT, upsampling or colour conversion for the rest; only that region is then decoded. The region is
the crop plus one MCU on every side, because chroma upsampling at a region's edge would otherwise lack
its neighbours: the crop cut from the middle of it equals the full decode's crop pixel for pixel
(tested; README: Performance). So crops stay anywhere, not only on the MCU grid.

The lossless crop still Huffman-decodes the whole file, most of a decode's cost; with a restart-marker
copy of a large JPEG (data/restart_jpegs.py, made once per image content) only the crop's MCU rows
are read at all.

Needs PyTurboJPEG (1.x: libjpeg-turbo 2.x, Debian's libturbojpeg0; the copies need Debian's jpegtran,
libjpeg-turbo-progs); without it, or for anything that is not a plain baseline/progressive JPEG (other
formats, CMYK, EXIF-rotated, smaller than the crop), `RegionDecoder` decodes the whole image with
Pillow as before.
"""

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from detector_pipeline.data.images import MAX_PIXELS, BadImage, decode_rgb
from detector_pipeline.data.restart_jpegs import RestartJpegCache, RowIndex

try:
    import turbojpeg

    _TURBO = turbojpeg.TurboJPEG()
except (ImportError, OSError, RuntimeError):  # module or shared library missing, or a libjpeg-turbo it can't use
    turbojpeg, _TURBO = None, None

_SOI = b"\xff\xd8"
# A restart-marker copy pays from photos of 4 crops' area up (a 448x448 photo); smaller ones are cheap
# to decode whole, and the demo's ~330 px images never get one.
_COPY_FROM_CROPS = 4


def region_decoding_available() -> bool:
    return _TURBO is not None


def _mcu(subsample: int) -> tuple[int, int]:
    """(width, height) in pixels of a minimum coded unit for libjpeg-turbo's subsampling code."""
    return (turbojpeg.tjMCUWidth[subsample], turbojpeg.tjMCUHeight[subsample])


def jpeg_header(data: bytes) -> tuple[int, int, tuple[int, int]] | None:
    """(width, height, MCU size) of a JPEG that region decoding handles; None for anything else."""
    if _TURBO is None or data[:2] != _SOI:
        return None
    try:
        width, height, subsample, colorspace = _TURBO.decode_header(data)
    except OSError:
        return None
    if colorspace not in (turbojpeg.TJCS_YCbCr, turbojpeg.TJCS_GRAY) or _rotated(data):
        return None
    return width, height, _mcu(subsample)


def decode_region(data: bytes, x: int, y: int, width: int, height: int) -> Image.Image:
    """The pixels [x, x+width) x [y, y+height) of a JPEG as RGB, equal to the full decode's crop."""
    return _cut(data, jpeg_header(data), x, y, width, height)


def decode_region_of_rows(copy: bytes, header: tuple[int, int, tuple[int, int]], x: int, y: int, width: int,
                          height: int) -> Image.Image:
    """decode_region from a restart-marker copy of a JPEG whose jpeg_header is `header`: only the MCU
    rows under the region (and one above and below it, for chroma upsampling) are read."""
    full_width, full_height, (mcu_w, mcu_h) = header
    index = RowIndex(copy, mcu_h, full_height)
    first, end = max(0, y // mcu_h - 1), min(len(index.rows), (y + height) // mcu_h + 2)
    strip_height = min(full_height, end * mcu_h) - first * mcu_h
    return _cut(index.strip(first, end), (full_width, strip_height, (mcu_w, mcu_h)), x, y - first * mcu_h,
                width, height)


def _cut(data: bytes, header: tuple[int, int, tuple[int, int]], x: int, y: int, width: int,
         height: int) -> Image.Image:
    """decode_region with the JPEG's header already read (the caller checked it once)."""
    full_width, full_height, (mcu_w, mcu_h) = header
    left, top = max(0, (x // mcu_w - 1) * mcu_w), max(0, (y // mcu_h - 1) * mcu_h)
    right, bottom = min(full_width, x + width + mcu_w), min(full_height, y + height + mcu_h)
    # preserve=True: keep the partial MCU at the right and bottom edges (False trims it away).
    region = _TURBO.crop(data, left, top, right - left, bottom - top, preserve=True)
    pixels = _TURBO.decode(region, pixel_format=turbojpeg.TJPF_RGB)
    return Image.fromarray(np.ascontiguousarray(pixels[y - top:y - top + height, x - left:x - left + width]))


class RegionDecoder:
    """bytes -> a random `size` x `size` native crop (region decode), or the whole image (Pillow) where
    region decoding does not apply; NativeCrop then crops the latter as it always did. With `copies`,
    large JPEGs are read through their restart-marker copies (made on first use)."""

    def __init__(self, size: int, copies: Path | None = None):
        self.size = size
        self.copies = RestartJpegCache(copies) if copies is not None else None

    def __call__(self, data: bytes) -> Image.Image:
        header = jpeg_header(data)
        if header is None or min(header[0], header[1]) < self.size:
            return decode_rgb(data)
        width, height, _ = header
        if width * height > MAX_PIXELS:
            raise BadImage(f"decompression bomb: {width}x{height} declared")
        # torch's generator, like RandomCrop's: the loader seeds it per worker and per epoch.
        x, y = (int(torch.randint(0, side - self.size + 1, (1,))) for side in (width, height))
        try:
            copy = self._copy(data, width * height)
            if copy is not None:
                try:
                    return decode_region_of_rows(copy, header, x, y, self.size, self.size)
                except ValueError:  # a copy without one restart interval per row: crop the original
                    pass
            return _cut(data, header, x, y, self.size, self.size)
        except OSError:  # a file libjpeg-turbo rejects mid-way: Pillow says what is wrong with it
            return decode_rgb(data)

    def _copy(self, data: bytes, pixels: int) -> bytes | None:
        if self.copies is None or pixels < _COPY_FROM_CROPS * self.size * self.size:
            return None
        return self.copies.copy_of(data)

    def __repr__(self) -> str:
        return f"RegionDecoder(size={self.size}, copies={self.copies.folder if self.copies else None})"


def _rotated(data: bytes) -> bool:
    """Whether the JPEG's EXIF orientation asks for a rotation or a flip (those decode whole, upright)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.getexif().get(0x0112, 1) != 1
    except Exception:  # noqa: BLE001 (an unreadable header: the full decoder gives the verdict)
        return True
