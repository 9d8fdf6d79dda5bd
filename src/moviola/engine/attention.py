"""Which attention kernel the denoisers run, chosen per GPU and set on every loaded model.

Attention is about 70 % of a Wan step at 480p, and PyTorch's own choice of kernel depends on its
build: FlashAttention-2-class kernels reach about half of what cuDNN's or FlashAttention-3's do on
an H100. So Moviola chooses, per device:

- sm90 (H100, H200): FlashAttention-3 (`_flash_3`) where installed, else the Hub build
  (`_flash_3_hub`) where the `kernels` package has it cached, else cuDNN's SDPA
  (`_native_cudnn`, which ships with PyTorch);
- other CUDA GPUs: SageAttention (`sage`) where installed, else FlashAttention-2 (`flash`), else
  PyTorch's SDPA (`native`);
- CPU: `native`.

A wanted kernel that is not installed falls back with one log line saying so. The setting
`MOVIOLA_ATTENTION_BACKEND` names one backend instead; an unknown or unusable name is an error
when the worker starts, never a silent fallback.

Trap avoided: diffusers' `set_attention_backend` also makes the backend process-wide, and
`reset_attention_backend` does not undo that, so one model's kernel would leak into every model
loaded after it. Moviola sets the backend on each denoiser and puts the process-wide one back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from moviola.engine import parallel
from moviola.errors import MoviolaError

log = logging.getLogger("moviola.engine")

AUTO = "auto"
# Backends that run without CUDA; any other needs a CUDA device.
CPU_BACKENDS = frozenset({"native", "_native_math", "flex"})
# Kernels that come from a package (or the kernels cache) rather than PyTorch itself, and what
# provides each, for the messages.
KERNEL_SOURCES = {
    "_flash_3": "FlashAttention-3 (the flash_attn_interface package)",
    "_flash_3_hub": "FlashAttention-3 from the Hub (the kernels package, with "
    "kernels-community/flash-attn3 in its cache)",
    "sage": "SageAttention (the sageattention package, 2.1.1 or newer)",
    "flash": "FlashAttention-2 (the flash-attn package)",
}
HUB_KERNELS = {"_flash_3_hub": ("kernels-community/flash-attn3", 1)}


class AttentionSettingError(MoviolaError):
    code = "invalid_attention_backend"


@dataclass(frozen=True)
class Choice:
    """The backend to use, and the line to log when a wanted kernel was not there."""

    backend: str
    fallback: str | None = None


def choose(capability: tuple[int, int] | None, installed: Iterable[str]) -> Choice:
    """The backend for a device: `capability` is the CUDA compute capability (None: a CPU),
    `installed` the package kernels (`KERNEL_SOURCES` keys) this machine has."""
    have = set(installed)
    if capability is None:
        return Choice("native")
    if capability[0] == 9:
        wanted, preference, floor = "_flash_3", ("_flash_3", "_flash_3_hub"), "_native_cudnn"
    else:
        wanted, preference, floor = "sage", ("sage", "flash"), "native"
    for backend in preference:
        if backend in have:
            return Choice(backend, None if backend == wanted else _fallback(wanted, backend))
    return Choice(floor, _fallback(wanted, floor, capability))


def _fallback(wanted: str, used: str, capability: tuple[int, int] | None = None) -> str:
    gpu = f" on sm{capability[0]}{capability[1]}" if capability else ""
    return (
        f"attention: {wanted} wanted{gpu}, but {KERNEL_SOURCES[wanted]} is not installed; "
        f"using {used}"
    )


def resolve(setting: str, device: str) -> Choice:
    """The backend `setting` (`auto` or a diffusers backend name) gives on `device`; raises
    `AttentionSettingError` for a name that is unknown or cannot run here."""
    capability = _capability(device)
    if setting == AUTO:
        return choose(capability, installed_kernels(capability))
    from diffusers.models.attention_dispatch import AttentionBackendName

    names = sorted(b.value for b in AttentionBackendName)
    if setting not in names:
        raise AttentionSettingError(
            f"MOVIOLA_ATTENTION_BACKEND={setting!r} is not an attention backend; use auto or "
            f"one of {', '.join(names)}"
        )
    if capability is None and setting not in CPU_BACKENDS:
        raise AttentionSettingError(
            f"MOVIOLA_ATTENTION_BACKEND={setting} needs a CUDA GPU and this worker runs on "
            f"{device}; use auto or one of {', '.join(sorted(CPU_BACKENDS))}"
        )
    if setting in KERNEL_SOURCES and setting not in installed_kernels(capability):
        raise AttentionSettingError(
            f"MOVIOLA_ATTENTION_BACKEND={setting} needs {KERNEL_SOURCES[setting]}, which this "
            f"machine lacks; install it or use auto"
        )
    _check_requirements(setting)
    return Choice(setting)


def _check_requirements(backend: str) -> None:
    """diffusers' own check of a backend's packages and versions, as a clear error."""
    from diffusers.models.attention_dispatch import (
        AttentionBackendName,
        _check_attention_backend_requirements,
    )

    try:
        _check_attention_backend_requirements(AttentionBackendName(backend))
    except (RuntimeError, ImportError) as err:
        raise AttentionSettingError(f"MOVIOLA_ATTENTION_BACKEND={backend}: {err}") from None


def _capability(device: str) -> tuple[int, int] | None:
    if not device.startswith("cuda"):
        return None
    import torch

    major, minor = torch.cuda.get_device_capability(device)
    return (int(major), int(minor))


def installed_kernels(capability: tuple[int, int] | None) -> frozenset[str]:
    """The package kernels this machine can run (none without a GPU)."""
    if capability is None:
        return frozenset()
    from diffusers.models import attention_dispatch as dispatch

    found = set()
    if dispatch._CAN_USE_FLASH_ATTN_3:
        found.add("_flash_3")
    if dispatch._CAN_USE_SAGE_ATTN:
        found.add("sage")
    if dispatch._CAN_USE_FLASH_ATTN:
        found.add("flash")
    if _hub_kernel_cached("_flash_3_hub"):
        found.add("_flash_3_hub")
    return frozenset(found)


def _hub_kernel_cached(backend: str) -> bool:
    """Whether `kernels` can load the backend's kernel from its cache, with no download."""
    try:
        from kernels import install_kernel  # type: ignore[import-untyped]
    except ImportError:
        return False
    repo, version = HUB_KERNELS[backend]
    try:
        install_kernel(repo, version=version, local_files_only=True)
    except Exception:  # not cached, or no build for this torch and GPU: all mean "not here"
        return False
    return True


def apply(denoisers: Iterable[Any], backend: str) -> None:
    """Set `backend` on each denoiser, leaving the process-wide default as it was. A denoiser
    split across a group of devices runs a kernel that can run its split (`split_backend`)."""
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    before = _AttentionBackendRegistry.get_active_backend()[0]
    try:
        for denoiser in denoisers:
            layout = getattr(denoiser, parallel.LAYOUT, None)
            denoiser.set_attention_backend(parallel.split_backend(layout, backend))
    finally:
        _AttentionBackendRegistry.set_active_backend(before)


def backend_of(denoiser: Any) -> str | None:
    """The backend set on `denoiser`'s attention processors (None: the process default)."""
    for module in denoiser.modules():
        processor = getattr(module, "processor", None)
        if processor is not None and hasattr(processor, "_attention_backend"):
            backend = processor._attention_backend
            return None if backend is None else str(getattr(backend, "value", backend))
    return None


def log_choice(choice: Choice, device: str) -> None:
    if choice.fallback:
        log.warning(choice.fallback)
    else:
        log.info("attention: %s on %s", choice.backend, device)
