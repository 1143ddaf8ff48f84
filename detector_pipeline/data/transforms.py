"""Native-resolution crops: the upsampling fingerprints of generators live in the pixels, so the
image is never downscaled; it is upscaled only when its short side is below the crop size."""

import torch
from PIL import Image
from torchvision.transforms import v2 as T
from torchvision.transforms.v2 import functional as F


class NativeCrop:
    """A `size` x `size` crop at native resolution: random in training, centred in evaluation."""

    def __init__(self, size: int = 224, train: bool = False):
        self.size = size
        self.train = train
        self.crop = T.RandomCrop(size) if train else T.CenterCrop(size)

    def __call__(self, image: Image.Image) -> Image.Image:
        short = min(image.size)
        if short < self.size:
            scale = self.size / short
            width, height = (max(self.size, round(side * scale)) for side in image.size)
            image = image.resize((width, height), Image.Resampling.BICUBIC)
        return self.crop(image)

    def __repr__(self) -> str:
        return f"NativeCrop(size={self.size}, train={self.train})"


def feed_processing() -> list:
    """What feeds do to uploads, short of resizing: JPEG recompression at a random quality, now and
    then a little blur (B-Free, CVPR 2025, trains on such histories). Never a downscale: it would smear
    the upsampling traces the detector looks for."""
    return [T.RandomApply([T.JPEG(quality=(60, 95))], p=0.5),
            T.RandomApply([T.GaussianBlur(kernel_size=3, sigma=(0.1, 1.0))], p=0.2)]


def detector_transform(size: int, train: bool, augment: bool = False) -> T.Compose:
    """PIL image -> uint8 (3, size, size) tensor; `BatchNormalize` makes the model input of a batch."""
    steps = [NativeCrop(size, train)]
    if train:
        steps.append(T.RandomHorizontalFlip())
    return T.Compose([*steps, T.PILToTensor(), *(feed_processing() if train and augment else [])])


def resized_transform(size: int, train: bool, augment: bool = False) -> T.Compose:
    """The usual alternative, for the ablation: the whole image resized to size x size."""
    steps = [T.Resize((size, size), interpolation=T.InterpolationMode.BICUBIC, antialias=True)]
    if train:
        steps.append(T.RandomHorizontalFlip())
    return T.Compose([*steps, T.PILToTensor(), *(feed_processing() if train and augment else [])])


class Repeated:
    """`copies` independent draws of a random transform of one decoded image, stacked: several crops
    per image and epoch for the price of one decode."""

    def __init__(self, transform, copies: int):
        self.transform, self.copies = transform, copies

    def __call__(self, image) -> torch.Tensor:
        return torch.stack([self.transform(image) for _ in range(self.copies)])


class BatchNormalize:
    """uint8 image batches -> normalized float batches on the device.

    Per-image transforms stop at uint8: loader workers ship a quarter of the bytes, and the float
    conversion runs once per batch (on the GPU where there is one) instead of once per image. The
    same torchvision functions do it, so the numbers are the same as per-image normalization.
    """

    def __init__(self, mean, std, device: torch.device, channels_last: bool = True):
        self.mean, self.std, self.device = list(mean), list(std), device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        x = F.to_dtype(batch.to(self.device, non_blocking=True), torch.float32, scale=True)
        return F.normalize(x, self.mean, self.std, inplace=True).contiguous(memory_format=self.memory_format)
