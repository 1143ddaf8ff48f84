"""Native-resolution crops: the upsampling fingerprints of generators live in the pixels, so the
image is never downscaled; it is upscaled only when its short side is below the crop size."""

import torch
from PIL import Image
from torchvision.transforms import v2 as T

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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


def detector_transform(size: int, train: bool, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> T.Compose:
    steps = [NativeCrop(size, train)]
    if train:
        steps.append(T.RandomHorizontalFlip())
    steps += [T.PILToTensor(), T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)]
    return T.Compose(steps)


def resized_transform(size: int, train: bool, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> T.Compose:
    """The usual alternative, for the ablation: the whole image resized to size x size."""
    steps = [T.Resize((size, size), interpolation=T.InterpolationMode.BICUBIC, antialias=True)]
    if train:
        steps.append(T.RandomHorizontalFlip())
    steps += [T.PILToTensor(), T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)]
    return T.Compose(steps)
