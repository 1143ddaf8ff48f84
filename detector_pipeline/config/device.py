"""Choosing the device and the autocast dtype."""

import torch


def pick_device(requested: str = "auto") -> torch.device:
    if requested != "auto":
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def to_device(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model on the device in channels-last memory format (inputs come the same way, from
    BatchNormalize): CPU convolution kernels and GPU tensor cores run faster on it (README:
    Performance); ViTs don't mind."""
    if device.type == "cpu":
        # Denormal floats (tiny gradients late in training) are slow on x86 CPUs: flush them to zero.
        torch.set_flush_denormal(True)
    return model.to(device=device, memory_format=torch.channels_last)


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as info:
            return {flag for line in info if line.startswith("flags") for flag in line.split(":", 1)[1].split()}
    except OSError:
        return set()


def cpu_runs_bf16_natively() -> bool:
    """AVX512-BF16 or AMX: where bf16 autocast on the CPU is a speed-up rather than an emulation many
    times slower than fp32."""
    return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())


def cpu_runs_int8_natively() -> bool:
    """VNNI (AVX512 or AVX) or AMX: where torch._int_mm has fast kernels on the CPU. Without them it
    was measured 50x slower than an fp32 matmul of the same shape (2 AVX2 cores)."""
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & _cpu_flags())


def autocast_dtype(device: torch.device, requested: str = "auto") -> torch.dtype | None:
    """bf16 where the hardware runs it natively (CUDA with bf16 support); None means fp32.

    On CPUs without AVX512-BF16/AMX bf16 autocast is slower than fp32, so `auto` stays in fp32 there;
    ask for "bf16" explicitly on a CPU that has them.
    """
    if requested == "fp32":
        return None
    if requested == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None
