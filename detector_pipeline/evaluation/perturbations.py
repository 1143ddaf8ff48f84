"""Image perturbations for the robustness and format-swap tests, applied to both classes alike.
Module-level functions bound with functools.partial, so DataLoader workers can pickle them."""

import io
from functools import partial

from PIL import Image, ImageFilter


def reencode(image: Image.Image, fmt: str, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format=fmt, quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def downscale(image: Image.Image, factor: float) -> Image.Image:
    w, h = image.size
    return image.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.BICUBIC)


def blur(image: Image.Image, radius: float) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius))


ROBUSTNESS = {
    "jpeg_q90": partial(reencode, fmt="JPEG", quality=90),
    "jpeg_q75": partial(reencode, fmt="JPEG", quality=75),
    "jpeg_q50": partial(reencode, fmt="JPEG", quality=50),
    "downscale_x0.5": partial(downscale, factor=0.5),
    "gaussian_blur_r1": partial(blur, radius=1.0),
}

# Every image re-encoded in another format: a model that keyed on the JPEG encoding rather than the
# picture loses its ranking here.
FORMAT_SWAP = {"webp_q90": partial(reencode, fmt="WEBP", quality=90)}
