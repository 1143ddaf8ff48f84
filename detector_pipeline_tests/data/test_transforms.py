import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torchvision.transforms import v2 as T

from detector_pipeline.data.transforms import BatchNormalize, NativeCrop, detector_transform


def _gradient(width: int, height: int) -> Image.Image:
    x = np.arange(width)[None, :, None] % 251
    y = np.arange(height)[:, None, None] % 241
    return Image.fromarray(np.broadcast_to(np.concatenate([x + 0 * y, y + 0 * x, (x + y) % 256], -1), (height, width, 3)).astype(np.uint8))


def _find_window(big: np.ndarray, small: np.ndarray) -> tuple[int, int] | None:
    h, w = small.shape[:2]
    for top in range(big.shape[0] - h + 1):
        for left in range(big.shape[1] - w + 1):
            if np.array_equal(big[top:top + h, left:left + w], small):
                return top, left
    return None


@settings(max_examples=15, deadline=None)
@given(width=st.integers(64, 120), height=st.integers(64, 120), train=st.booleans())
def test_native_crop_never_resamples_an_image_large_enough(width, height, train):
    image = _gradient(width, height)
    out = NativeCrop(64, train=train)(image)
    assert out.size == (64, 64)
    assert _find_window(np.asarray(image), np.asarray(out)) is not None  # the very pixels, not resampled


def test_eval_crop_is_centred():
    image = _gradient(300, 200)
    out = np.asarray(NativeCrop(100, train=False)(image))
    assert np.array_equal(out, np.asarray(image)[50:150, 100:200])


def test_small_image_is_upscaled_just_enough():
    image = _gradient(300, 150)
    crop = NativeCrop(224, train=False)
    out = crop(image)
    assert out.size == (224, 224)
    # short side 150 -> 224, long side scaled by the same factor (448), then centre-cropped
    scaled = image.resize((448, 224), Image.Resampling.BICUBIC)
    assert np.array_equal(np.asarray(out), np.asarray(scaled)[:, 112:336])


def test_random_crops_differ_in_training():
    image = _gradient(400, 400)
    crop = NativeCrop(64, train=True)
    positions = {_find_window(np.asarray(image), np.asarray(crop(image))) for _ in range(5)}
    assert len(positions) > 1


@pytest.mark.parametrize("train", [True, False])
def test_detector_transform_gives_a_uint8_crop(train):
    x = detector_transform(64, train)(_gradient(100, 90))
    assert tuple(x.shape) == (3, 64, 64)
    assert x.dtype == torch.uint8


@pytest.mark.parametrize("channels_last", [False, True])
def test_batch_normalize_matches_per_image_normalization(channels_last):
    batch = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    per_image = T.Normalize(mean, std)(T.ToDtype(torch.float32, scale=True)(batch))
    batched = BatchNormalize(mean, std, torch.device("cpu"), channels_last)(batch)
    assert torch.equal(batched, per_image)
    assert batched.is_contiguous(memory_format=torch.channels_last) == channels_last
