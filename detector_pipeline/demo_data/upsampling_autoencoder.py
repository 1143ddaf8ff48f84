"""A small autoencoder whose decoder upsamples with stride-2 transposed convolutions.

It leaves the checkerboard fingerprint of Odena et al. (2016) that AutoGAN (Zhang, Karaman & Chang
2019) uses to stand in for GAN generators. Trained for a few hundred steps on held-back real crops.
"""

import numpy as np
import torch
from PIL import Image
from torch import nn


class UpsamplingAutoencoder(nn.Module):
    def __init__(self, width: int = 48):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(),
        )
        # kernel 3, stride 2: uneven overlap, hence the checkerboard.
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(width, 3, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)


def train(patches: torch.Tensor, steps: int, seed: int, batch_size: int = 16) -> UpsamplingAutoencoder:
    """patches: N x 3 x H x W in [0, 1]."""
    torch.manual_seed(seed)
    model = UpsamplingAutoencoder()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(patches), (batch_size,), generator=generator)
        batch = patches[idx]
        loss = nn.functional.l1_loss(model(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.inference_mode()
def reconstruct(model: UpsamplingAutoencoder, image: Image.Image) -> Image.Image:
    out = model(to_tensor(image)[None])[0].permute(1, 2, 0).numpy()
    return Image.fromarray((out * 255.0 + 0.5).astype(np.uint8))
