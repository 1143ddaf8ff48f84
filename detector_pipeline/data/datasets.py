"""Image files as a torch Dataset, decoded with the same safe decoder the label checks use."""

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from PIL import Image

from detector_pipeline.data.images import decode_rgb, read_regular_file


class ImageFiles(Dataset):
    """`decode`: a file's bytes -> PIL image; the whole image by default, or a region of it
    (data/jpeg_regions.RegionDecoder: native training crops of large JPEGs)."""

    def __init__(self, paths: Sequence[Path], targets: Sequence[float] | None, transform: Callable,
                 decode: Callable[[bytes], Image.Image] = decode_rgb):
        self.paths = list(paths)
        self.targets = None if targets is None else torch.as_tensor(list(targets), dtype=torch.float32)
        self.transform = transform
        self.decode = decode

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        x = self.transform(self.decode(read_regular_file(self.paths[i])))
        return (x, self.targets[i]) if self.targets is not None else x


def make_loader(dataset: Dataset, batch_size: int, num_workers: int, device: torch.device, shuffle: bool = False,
                seed: int = 0, sampler: Sampler | None = None) -> DataLoader:
    """`sampler` (a DistributedSampler, say) replaces the seeded shuffle."""
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
        num_workers=num_workers, pin_memory=device.type == "cuda", persistent_workers=False,
        generator=torch.Generator().manual_seed(seed) if shuffle and sampler is None else None,
        drop_last=False,
    )
