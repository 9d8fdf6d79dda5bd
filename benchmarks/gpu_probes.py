"""What the GPU benchmark records about the machine: versions, the card's peak, two kernel probes.

- `environment()`: torch, CUDA, cuDNN, diffusers, transformers, the device and its bf16 peak
  (from the datasheet table below, by device name);
- `matmul_probe()`: an 8192³ bf16 matmul, the rate the card reaches in practice (MFU is also
  given against it);
- `sdpa_probe()`: `F.scaled_dot_product_attention` at the model's exact attention shape, with
  PyTorch's default choice and each CUDA kernel forced. Which kernel the default picks decides
  what "bare diffusers" costs: FlashAttention-2-class kernels reach about half of cuDNN's at
  head size 128 on an H100.
"""

from __future__ import annotations

import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from NVIDIA's datasheets, matched in order
# against the device name (so "H100 PCIe" before "H100", "L40S" before "L40" before "L4").
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM
    ("H200", 989.0),
    ("H800", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("L4", 121.0),
    ("RTX 4090", 165.0),
)


def peak_tflops(device_name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS:
        if key in device_name:
            return value
    return None


def environment(device: str) -> dict[str, Any]:
    import diffusers
    import torch
    import transformers

    import moviola

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "moviola": moviola.__version__,
        "commit": _commit(),
        "device": device,
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        env.update(
            device_name=props.name,
            capability=f"sm{props.major}{props.minor}",
            memory_gb=round(props.total_memory / 1e9, 1),
            peak_bf16_tflops=peak_tflops(props.name),
        )
    else:
        env.update(device_name=platform.processor() or platform.machine(), peak_bf16_tflops=None)
    return env


def _commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def timed(fn: Callable[[], Any], device: str, repeat: int, warmup: int = 2) -> float:
    """Seconds per call of `fn` on `device`, after `warmup` calls, the device's queue waited for."""
    import torch

    cuda = device.startswith("cuda")
    for _ in range(warmup):
        fn()
    if cuda:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(repeat):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000 / repeat
    began = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - began) / repeat


def matmul_probe(device: str) -> dict[str, Any]:
    """The dense matmul rate this device reaches: 8192³ in bf16 on a GPU (512³ fp32 on a CPU)."""
    import torch

    cuda = device.startswith("cuda")
    n, dtype = (8192, torch.bfloat16) if cuda else (512, torch.float32)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    seconds = timed(lambda: a @ b, device, repeat=20 if cuda else 5)
    return {
        "shape": [n, n, n],
        "dtype": str(dtype).removeprefix("torch."),
        "tflops": _rate(2 * n**3, seconds),
    }


# What each forced kernel is called (torch.nn.attention.SDPBackend), and the CUDA kernel names
# that give each away in a profile.
_SDPA_BACKENDS = ("FLASH_ATTENTION", "CUDNN_ATTENTION", "EFFICIENT_ATTENTION")
_KERNEL_NAMES = (
    ("cudnn", "CUDNN_ATTENTION"),
    ("flash", "FLASH_ATTENTION"),
    ("fmha", "EFFICIENT_ATTENTION"),
    ("efficient", "EFFICIENT_ATTENTION"),
    ("softmax", "MATH"),
)


def sdpa_probe(device: str, heads: int, tokens: int, head_dim: int) -> dict[str, Any]:
    """Self-attention at (1, heads, tokens, head_dim), laid out as diffusers' `native` backend
    passes it: TFLOP/s of PyTorch's default and of each kernel forced, and the default's pick."""
    import torch
    import torch.nn.functional as F

    cuda = device.startswith("cuda")
    dtype = torch.bfloat16 if cuda else torch.float32
    # diffusers holds (batch, tokens, heads, dim) and hands SDPA a transposed view.
    q, k, v = (
        torch.randn(1, tokens, heads, head_dim, device=device, dtype=dtype).transpose(1, 2)
        for _ in range(3)
    )
    flops = 4 * heads * tokens * tokens * head_dim
    repeat = 5 if cuda else 3

    def attend() -> Any:
        return F.scaled_dot_product_attention(q, k, v)

    found: dict[str, Any] = {
        "shape": [1, heads, tokens, head_dim],
        "dtype": str(dtype).removeprefix("torch."),
        "default_tflops": _rate(flops, timed(attend, device, repeat)),
        "backends": {},
    }
    if not cuda:
        return found
    from torch.nn.attention import SDPBackend, sdpa_kernel

    for name in _SDPA_BACKENDS:
        try:
            with sdpa_kernel([getattr(SDPBackend, name)]):
                found["backends"][name] = _rate(flops, timed(attend, device, repeat))
        except Exception as err:  # a kernel that cannot run this shape here says why
            found["backends"][name] = f"unavailable: {str(err).splitlines()[0][:160]}"
    rates = {n: r for n, r in found["backends"].items() if isinstance(r, float)}
    if rates:  # the forced kernel whose rate is nearest the default's
        found["nearest_forced"] = min(rates, key=lambda n: abs(rates[n] - found["default_tflops"]))
    try:
        found["default_kernel"], found["default_picks"] = _default_kernel(attend)
    except Exception as err:  # the profiler is a second opinion; its absence is not an error
        found["default_kernel"], found["default_picks"] = f"not profiled: {err}", None
    return found


def _default_kernel(attend: Callable[[], Any]) -> tuple[str | None, str | None]:
    """The longest CUDA kernel of one default SDPA call, and the backend its name belongs to."""
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        attend()
        torch.cuda.synchronize()
    kernels = [e for e in prof.key_averages() if e.device_type == DeviceType.CUDA]
    if not kernels:
        return None, None
    name = max(kernels, key=lambda e: e.self_device_time_total).key
    for marker, backend in _KERNEL_NAMES:
        if marker in name.lower():
            return name[:160], backend
    return name[:160], None


def _rate(flops: float, seconds: float) -> float:
    """TFLOP/s, to 4 significant figures."""
    return float(f"{flops / seconds / 1e12:.4g}")
