"""Real-ESRGAN x4plus through ncnn on the CPU: the GAN super-resolution family of the demo set."""

from pathlib import Path

import numpy as np
from PIL import Image

MODEL_STEM = "REALESRGAN_X4PLUS_UP4X"


class RealESRGAN:
    def __init__(self, model_dir: Path, threads: int = 2):
        import ncnn  # only the demo-set builder needs it

        param = model_dir / f"{MODEL_STEM}.param"
        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        self.net.opt.num_threads = threads
        self.net.load_param(str(param))
        self.net.load_model(str(model_dir / f"{MODEL_STEM}.bin"))
        self.output_name = last_output_blob(param.read_text())
        self._ncnn = ncnn

    def upscale(self, image: Image.Image) -> Image.Image:
        chw = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0)
        # ncnn.Mat wraps chw without copying: chw must stay alive until extract() returns.
        mat = self._ncnn.Mat(chw)
        ex = self.net.create_extractor()
        ex.input("data", mat)
        _, out = ex.extract(self.output_name)
        result = np.array(out).clip(0.0, 1.0)
        del chw
        return Image.fromarray((result.transpose(1, 2, 0) * 255.0 + 0.5).astype(np.uint8))


def last_output_blob(param_text: str) -> str:
    """The first output blob of the last layer: `type name n_in n_out in... out... k=v...`."""
    tokens = param_text.strip().splitlines()[-1].split()
    n_in = int(tokens[2])
    return tokens[4 + n_in]
