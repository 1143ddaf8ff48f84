"""Large JPEGs kept a second time with a restart marker after every MCU row, so that a crop's rows can
be cut out of the file by slicing bytes, without decoding the rows above and below it.

A JPEG's entropy-coded data is one bit stream: to reach row 600 a decoder must Huffman-decode rows 0
to 599, which is most of the cost of a full decode (libjpeg-turbo's lossless crop saves only the
inverse DCT and colour conversion: 1.8x on 1600x1200 photographs). A restart marker resets the
decoder's state and sits on a byte boundary, so with one per MCU row each row is a byte range of its
own. `jpegtran -restart 1` adds them losslessly (same DCT coefficients, same pixels; baseline output
for progressive input), once per image content: the copy lives in the cache, keyed by the content's
hash, and every later training on that image (retrains, ablation seeds, epochs) reads only the rows
it needs. A strip of rows is a valid JPEG again once its height is patched into the frame header and
its restart markers are renumbered from 0; libjpeg-turbo's lossless crop then cuts the columns.
"""

import hashlib
import shutil
import struct
import subprocess
from pathlib import Path

from detector_pipeline.registry.artifacts import write_bytes_atomic

_SOF_BASELINE = (0xC0, 0xC1)
_SOS, _DRI, _EOI = 0xDA, 0xDD, 0xD9
_RST = range(0xD0, 0xD8)


class RowIndex:
    """Where each MCU row's entropy-coded bytes lie in a JPEG with one restart interval per MCU row."""

    def __init__(self, jpeg: bytes, mcu_height: int, image_height: int):
        header_end, self.height_offset, restart_interval = _scan_header(jpeg)
        self.header, self.jpeg = jpeg[:header_end], jpeg
        self.mcu_height, self.image_height = mcu_height, image_height
        self.rows = _row_ranges(jpeg, header_end)
        if restart_interval is None or len(self.rows) != -(-image_height // mcu_height):
            raise ValueError("not one restart interval per MCU row")

    def strip(self, first_row: int, end_row: int) -> bytes:
        """MCU rows [first_row, end_row) as a JPEG of their own."""
        height = min(self.image_height, end_row * self.mcu_height) - first_row * self.mcu_height
        header = bytearray(self.header)
        header[self.height_offset:self.height_offset + 2] = struct.pack(">H", height)
        parts = [bytes(header)]
        for k, (start, end) in enumerate(self.rows[first_row:end_row]):
            if k:
                parts.append(bytes((0xFF, 0xD0 + (k - 1) % 8)))
            parts.append(self.jpeg[start:end])
        parts.append(b"\xff\xd9")
        return b"".join(parts)


class RestartJpegCache:
    """content hash -> the restart-marker copy, made on first use; None where jpegtran is missing or
    refuses the file (the caller then decodes the region without it)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.available = shutil.which("jpegtran") is not None

    def copy_of(self, data: bytes) -> bytes | None:
        if not self.available:
            return None
        path = self.folder / f"{hashlib.sha256(data).hexdigest()}.jpg"
        if path.is_file():
            return path.read_bytes()
        converted = with_restart_markers(data)
        if converted is not None:
            write_bytes_atomic(path, converted)
        return converted


def with_restart_markers(data: bytes) -> bytes | None:
    """The same image, baseline, with a restart marker after every MCU row (lossless)."""
    try:
        done = subprocess.run(["jpegtran", "-restart", "1", "-copy", "none"], input=data,
                              capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 and done.stdout[:2] == b"\xff\xd8" else None


def _scan_header(jpeg: bytes) -> tuple[int, int, int | None]:
    """(offset where entropy data begins, offset of the frame height, restart interval or None)."""
    i, height_offset, interval = 2, None, None
    while i + 4 <= len(jpeg):
        if jpeg[i] != 0xFF:
            raise ValueError("not a marker where one should be")
        marker = jpeg[i + 1]
        length = struct.unpack(">H", jpeg[i + 2:i + 4])[0]
        if marker in _SOF_BASELINE:
            height_offset = i + 5
        elif marker == _DRI:
            interval = struct.unpack(">H", jpeg[i + 4:i + 6])[0] or None
        elif marker == _SOS:
            if height_offset is None:
                raise ValueError("not a baseline JPEG")
            return i + 2 + length, height_offset, interval
        elif 0xC2 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            raise ValueError("not a baseline JPEG")
        i += 2 + length
    raise ValueError("no scan")


def _row_ranges(jpeg: bytes, start: int) -> list[tuple[int, int]]:
    """The byte ranges between restart markers (stuffed 0xFF00 bytes and fill bytes are data)."""
    ranges, segment, i = [], start, start
    while True:
        i = jpeg.find(b"\xff", i)
        if i < 0 or i + 1 >= len(jpeg):
            raise ValueError("no end of image")
        following = jpeg[i + 1]
        if following in _RST or following == _EOI:
            ranges.append((segment, i))
            if following == _EOI:
                return ranges
            segment = i + 2
        i += 1 if following == 0xFF else 2
