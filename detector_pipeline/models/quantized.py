"""Int8 inference for a frozen transformer on CPUs: SmoothQuant-scaled Linear layers, int8 weights per
output channel, activations quantized per token at run time, products in exact int32 (torch._int_mm).

Why this recipe (README: Performance, "CPU inference"): per-tensor dynamic quantization (ONNX Runtime's
and torch.ao's) loses CLIP ViT-B/16 (per-image cosine to fp32 down to 0.5-0.9) because a few tokens and
a few channels carry activations far larger than the rest. Quantizing each token with its own scale
handles the tokens; SmoothQuant's per-channel scales, calibrated on real images, move the channels'
outliers into the weights, where per-channel int8 absorbs them.
"""

from collections.abc import Iterable

import torch

from detector_pipeline.config.device import cpu_runs_int8_natively

# SmoothQuant's migration strength: 0.5 splits the quantization difficulty evenly between activations
# and weights (measured best of 0.3/0.5/0.6 for CLIP ViT-B/16).
SMOOTHING_ALPHA = 0.5
_EPS = 1e-5


# Where the CPU has no int8 kernels, Int8Linear multiplies the same integers in fp32 (a float copy of
# the weights, made once): dozens of times faster there than torch._int_mm, and equal while a sum stays
# below 2**24 (always for 768 inputs; beyond that, within float32 rounding).
_FAST_CPU_INT8 = cpu_runs_int8_natively()


class Int8Linear(torch.nn.Module):
    """y = x W^T + b with x scaled per channel by `inv_smoothing`, quantized per token to int8, and W
    (already multiplied by the smoothing) quantized per output channel."""

    def __init__(self, linear: torch.nn.Linear, inv_smoothing: torch.Tensor):
        super().__init__()
        weight = linear.weight.detach().float() / inv_smoothing[None, :]
        weight_scale = weight.abs().amax(1).clamp(min=1e-8) / 127
        self.out_features = linear.out_features
        self.register_buffer("inv_smoothing", inv_smoothing.float().contiguous())
        # (in, out), contiguous: the layout torch._int_mm runs fastest with on CPUs.
        self.register_buffer("weight_t", torch.round(weight / weight_scale[:, None]).to(torch.int8).t().contiguous())
        self.register_buffer("weight_scale", weight_scale)
        bias = linear.bias.detach().float() if linear.bias is not None else torch.zeros(linear.out_features)
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = (x.float() * self.inv_smoothing).reshape(-1, shape[-1])
        token_scale = x.abs().amax(-1, keepdim=True).clamp(min=1e-8) / 127
        quantized = torch.round(x / token_scale).to(torch.int8)
        if quantized.device.type == "cpu" and not _FAST_CPU_INT8:
            if getattr(self, "_weight_t_float", None) is None:  # once; not part of the state
                self._weight_t_float = self.weight_t.float()
            product = quantized.float() @ self._weight_t_float
        else:
            product = torch._int_mm(quantized, self.weight_t).float()
        return torch.addcmul(self.bias, product, token_scale * self.weight_scale).reshape(*shape[:-1], self.out_features)


def quantizable_linears(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    """The Linear layers inside the transformer blocks (the patch embedding, norms and any head stay
    in fp32: they are a small share of the work and the most sensitive)."""
    return {name: module for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and ".blocks." in f".{name}"}


@torch.inference_mode()
def activation_maxima(model: torch.nn.Module, batches: Iterable[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per input channel, the largest |activation| entering each quantizable Linear over `batches`."""
    maxima: dict[str, torch.Tensor] = {}

    def recorder(name):
        def hook(_module, inputs):
            seen = inputs[0].detach().float().abs().flatten(0, -2).amax(0)
            maxima[name] = torch.maximum(maxima[name], seen) if name in maxima else seen
        return hook

    handles = [module.register_forward_pre_hook(recorder(name)) for name, module in quantizable_linears(model).items()]
    try:
        for batch in batches:
            model(batch)
    finally:
        for handle in handles:
            handle.remove()
    return maxima


def smoothing_scales(linear: torch.nn.Linear, activation_max: torch.Tensor, alpha: float = SMOOTHING_ALPHA) -> torch.Tensor:
    """SmoothQuant's s_j = max|X_j|^alpha / max|W_j|^(1-alpha), per input channel j."""
    weight_max = linear.weight.detach().float().abs().amax(0).clamp(min=_EPS)
    return (activation_max.clamp(min=_EPS) ** alpha / weight_max ** (1 - alpha)).clamp(min=_EPS)


def quantize_linears(model: torch.nn.Module, maxima: dict[str, torch.Tensor], alpha: float = SMOOTHING_ALPHA) -> torch.nn.Module:
    """The model with each calibrated Linear replaced by an Int8Linear, in place."""
    for name, linear in quantizable_linears(model).items():
        if name not in maxima:
            raise ValueError(f"no calibration for layer {name}: calibrate on this architecture first")
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, Int8Linear(linear, 1 / smoothing_scales(linear, maxima[name], alpha)))
    return model


def quantize_calibrated(model: torch.nn.Module, batches: Iterable[torch.Tensor],
                        alpha: float = SMOOTHING_ALPHA) -> torch.nn.Module:
    """Calibrated on `batches`, then quantized, in place (where no calibration file is kept: the bench)."""
    return quantize_linears(model, activation_maxima(model, batches), alpha)
