"""Region decoding: the crop's pixels equal the full decode's, wherever the crop lies, for every JPEG
flavour the decoder takes; everything else decodes whole, as before."""

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from detector_pipeline.data.images import decode_rgb
from detector_pipeline.data.jpeg_regions import (
    RegionDecoder,
    decode_region,
    decode_region_of_rows,
    jpeg_header,
    region_decoding_available,
)
from detector_pipeline.data.restart_jpegs import (
    RestartJpegCache,
    RowIndex,
    with_restart_markers,
)

WIDTH, HEIGHT = 333, 250  # not multiples of any MCU: partial MCUs at the right and bottom edges


def _photo_like(mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    pixels = np.stack([(x * 0.7) % 256, (y * 1.1) % 256, (x + y) % 256], -1) + rng.normal(0, 25, (HEIGHT, WIDTH, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).convert(mode)


def _jpeg(subsampling: str = "4:2:0", progressive: bool = False, mode: str = "RGB", **extra) -> bytes:
    buffer = io.BytesIO()
    options = {} if mode == "L" else {"subsampling": subsampling}
    _photo_like(mode).save(buffer, "JPEG", quality=90, progressive=progressive, **options, **extra)
    return buffer.getvalue()


def _rotated_exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to show upright
    return exif.tobytes()


FLAVOURS = {"4:2:0": _jpeg("4:2:0"), "4:2:2": _jpeg("4:2:2"), "4:4:4": _jpeg("4:4:4"),
            "progressive": _jpeg(progressive=True), "greyscale": _jpeg(mode="L")}


def test_the_decoder_is_installed_where_the_tests_run():
    # make test installs libturbojpeg0 and jpegtran; without them training decodes whole images.
    assert region_decoding_available() and RestartJpegCache(Path("unused")).available


@settings(max_examples=60, deadline=None)
@given(flavour=st.sampled_from(sorted(FLAVOURS)), x=st.integers(0, WIDTH - 64), y=st.integers(0, HEIGHT - 64),
       size=st.sampled_from([17, 64]))
def test_a_region_has_the_full_decodes_pixels(flavour, x, y, size):
    data = FLAVOURS[flavour]
    expected = np.asarray(decode_rgb(data))[y:y + size, x:x + size]
    assert np.array_equal(np.asarray(decode_region(data, x, y, size, size)), expected)


COPIES = {name: with_restart_markers(data) for name, data in FLAVOURS.items()}


@settings(max_examples=60, deadline=None)
@given(flavour=st.sampled_from(sorted(FLAVOURS)), x=st.integers(0, WIDTH - 64), y=st.integers(0, HEIGHT - 64),
       size=st.sampled_from([17, 64]))
def test_a_region_from_the_restart_marker_copy_has_the_full_decodes_pixels(flavour, x, y, size):
    data, copy = FLAVOURS[flavour], COPIES[flavour]
    expected = np.asarray(decode_rgb(data))[y:y + size, x:x + size]
    got = decode_region_of_rows(copy, jpeg_header(data), x, y, size, size)
    assert np.array_equal(np.asarray(got), expected)


def test_a_row_index_needs_one_restart_interval_per_row():
    assert len(RowIndex(COPIES["4:2:0"], 16, HEIGHT).rows) == -(-HEIGHT // 16)
    with pytest.raises(ValueError):
        RowIndex(FLAVOURS["4:2:0"], 16, HEIGHT)  # the original: no restart markers
    with pytest.raises(ValueError):
        RowIndex(FLAVOURS["progressive"], 16, HEIGHT)


def test_the_copy_is_made_once_per_image_content(tmp_path):
    big = _jpeg_of(np.asarray(_photo_like().resize((WIDTH * 2, HEIGHT * 2))))
    decoder = RegionDecoder(200, tmp_path / "copies")
    torch.manual_seed(0)
    crops = [decoder(big) for _ in range(3)]
    made = list((tmp_path / "copies").iterdir())
    assert len(made) == 1 and made[0].read_bytes() == with_restart_markers(big)
    assert all(c.size == (200, 200) for c in crops)
    decoder(FLAVOURS["4:2:0"])  # 333x250: under 4 crops' area, no copy
    assert len(list((tmp_path / "copies").iterdir())) == 1


def _jpeg_of(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_the_region_decoder_gives_random_crops_of_the_crop_size():
    torch.manual_seed(0)
    decoder = RegionDecoder(64)
    crops = [np.asarray(decoder(FLAVOURS["4:2:0"])) for _ in range(5)]
    assert all(c.shape == (64, 64, 3) for c in crops)
    assert len({c.tobytes() for c in crops}) > 1


@pytest.mark.parametrize("data", [
    pytest.param(_jpeg(exif=_rotated_exif()), id="EXIF-rotated JPEG"),
    pytest.param(_jpeg(mode="CMYK"), id="CMYK JPEG"),
    pytest.param(b"", id="empty"),
])
def test_what_region_decoding_does_not_take_it_leaves_to_the_full_decoder(data):
    assert jpeg_header(data) is None


def test_other_formats_and_small_jpegs_decode_whole():
    png = io.BytesIO()
    _photo_like().save(png, "PNG")
    assert RegionDecoder(64)(png.getvalue()).size == (WIDTH, HEIGHT)
    assert RegionDecoder(300)(FLAVOURS["4:2:0"]).size == (WIDTH, HEIGHT)  # shorter side 250 < 300: NativeCrop upscales
    rotated = _jpeg(exif=_rotated_exif())
    assert RegionDecoder(64)(rotated).size == (HEIGHT, WIDTH)  # upright, as decode_rgb gives it
