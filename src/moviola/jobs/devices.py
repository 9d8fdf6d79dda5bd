"""What the devices that render this server's jobs can hold: the memory check at submit.

A request that no device could hold in any placement is refused before anything is stored, with
what it needs and what the largest device has, rather than failing in a worker after its model
loaded. The local executor's devices are this machine's (the GPUs the workers take, or its RAM);
a Ray cluster's are not visible from here, so there the check takes `gpu_memory_gb`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from moviola.config import Settings
from moviola.engine import Plan, UnsupportedInputError
from moviola.engine.memory import GIB, MemoryPreference, plan_for, ram_bytes
from moviola.engine.parallel import why_unsplittable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Devices:
    """The memory of each device a job may run on, in bytes, and whether they are GPUs."""

    sizes: tuple[int, ...]
    accelerator: bool


def devices_of(settings: Settings) -> Devices | None:
    """This server's rendering devices, or None when it cannot know them (say so once)."""
    if settings.gpu_memory_gb > 0:
        return Devices((int(settings.gpu_memory_gb * GIB),), accelerator=True)
    if settings.executor == "ray":
        log.info(
            "requests are not checked against GPU memory at submit: a Ray cluster's GPUs are "
            "not visible from here; set MOVIOLA_GPU_MEMORY_GB to check them"
        )
        return None
    from moviola.jobs.supervisor import worker_devices

    gpus = sorted({d for d in worker_devices(settings) if not d.startswith("cpu")})
    if not gpus:
        return Devices((ram_bytes(),), accelerator=False)
    import torch

    return Devices(
        tuple(int(torch.cuda.get_device_properties(torch.device(d)).total_memory) for d in gpus),
        accelerator=True,
    )


def check_fits(
    resolved: Plan, devices: Devices | None, preference: MemoryPreference, ranks: int = 1
) -> None:
    """Raise `InsufficientMemoryError` when a model `resolved` runs fits no device, and
    `UnsupportedInputError` when workers split each job across `ranks` devices and a model
    cannot be split."""
    width, height = resolved.render_size
    chain = resolved.chain_spec
    runs = [(resolved.spec, [s for s in resolved.segments if chain is None or not s.continues])]
    if chain is not None:
        runs.append((chain, [s for s in resolved.segments if s.continues]))
    for spec, segments in runs:
        if ranks > 1 and spec.transformer is not None:
            why = why_unsplittable(spec.transformer.cls)
            if why is not None:
                raise UnsupportedInputError(
                    f"{spec.id} cannot run here: this server splits each job across {ranks} "
                    f"GPUs, and {spec.transformer.cls} cannot be split ({why})",
                    param="model",
                )
        if segments and devices is not None:
            # Each reference image is one more latent frame in every call.
            frames = max(s.frames for s in segments) + resolved.references * spec.frame_rule.step
            plan_for(
                spec,
                width,
                height,
                frames,
                devices.sizes,
                preference,
                accelerator=devices.accelerator,
            )
