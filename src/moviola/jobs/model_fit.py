"""What each model needs of this machine's GPU, and which model to start with.

The figures are the memory planner's (`moviola.engine.memory`), for the request `moviola
models plan ID` plans by default: the model's first native size and its longest single
segment. The devices are the ones this server's workers render on (`moviola.jobs.devices`).

The model recommended on a first run is the largest (by its denoiser's parameters, what
quality follows) of the general text-to-video models that the planner fits on this machine's
GPU with whole components on the GPU (resident, encoders sent away, or one component at a
time): a placement that streams the denoiser in block by block fits nearly any model on
nearly any card, at a pace no first video should take. Where no model fits so, the smallest
that fits at all, which streams the fewest blocks. A machine with no GPU gets the `tiny`
test model, which makes noise in seconds on a CPU: enough to try the whole flow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from moviola.config import Settings
from moviola.engine.catalogue import Capability, ModelSpec, catalogue, get_model
from moviola.engine.memory import (
    InsufficientMemoryError,
    MemoryMode,
    MemoryPlan,
    MemoryPreference,
    footprint,
    gb,
    leanest,
    peak,
    plan_for,
)
from moviola.jobs.devices import Devices, devices_of

log = logging.getLogger(__name__)

TEST_MODEL = "tiny"
# Placements that keep each component whole on the GPU while it runs.
WHOLE = (MemoryMode.RESIDENT, MemoryMode.ENCODER_OFFLOAD, MemoryMode.MODEL_OFFLOAD)


@dataclass(frozen=True)
class Machine:
    """The devices this server renders on; None where it cannot see them (a Ray cluster
    without `gpu_memory_gb`)."""

    devices: Devices | None
    preference: MemoryPreference = MemoryPreference.AUTO

    @property
    def gpu(self) -> bool:
        return self.devices is not None and self.devices.accelerator

    def describe(self) -> str:
        if self.devices is None:
            return "this server's GPUs are not visible from here (set gpu_memory_gb)"
        sizes = ", ".join(f"{gb(size):.0f} GB" for size in self.devices.sizes)
        if not self.devices.accelerator:
            return f"no GPU: a CPU with {sizes} of memory"
        count = len(self.devices.sizes)
        return f"{'a GPU' if count == 1 else f'{count} GPUs'} of {sizes}"


_machines: dict[tuple, Machine] = {}


def machine_of(settings: Settings) -> Machine:
    """This server's devices, read once per process (with GPUs, reading their sizes loads
    torch)."""
    key = (
        settings.gpu_memory_gb,
        settings.executor,
        settings.device,
        settings.workers,
        settings.gpus_per_worker,
        settings.memory,
    )
    found = _machines.get(key)
    if found is None:
        # An API-only node (no workers of its own) still says what this machine has.
        local = settings.model_copy(update={"workers": max(1, settings.workers)})
        try:
            devices = devices_of(local)
        except Exception as err:  # a device setting this machine cannot meet: the workers say
            log.warning("could not read this machine's devices: %s", err)
            devices = None
        found = _machines[key] = Machine(devices, MemoryPreference(settings.memory))
    return found


@dataclass(frozen=True)
class Need:
    """What a model needs here, in one line, and whether it fits (None: cannot tell)."""

    text: str
    fits: bool | None
    plan: MemoryPlan | None = None

    @property
    def whole(self) -> bool:
        return self.plan is not None and self.plan.mode in WHOLE


def need(spec: ModelSpec, machine: Machine) -> Need:
    if spec.is_test_model:
        return Need("runs anywhere, CPU or GPU, in seconds (it makes noise)", True)
    width, height = spec.native_sizes[0]
    frames = spec.max_frames
    on_gpu = footprint(spec, width, height, frames, accelerator=True)
    least, whole = gb(leanest(on_gpu)), gb(peak(on_gpu, MemoryMode.RESIDENT, fp8=False, tiled=True))
    if machine.devices is None:
        return Need(
            f"a GPU of ≈{least:.0f} GB or more (≈{whole:.0f} GB to keep it all on it)", None
        )
    if not machine.gpu:
        return Need(
            f"no GPU here: it needs a GPU of ≈{least:.0f} GB or more "
            f"(≈{whole:.0f} GB to keep it all on the GPU)",
            False,
        )
    try:
        plan = plan_for(
            spec, width, height, frames, machine.devices.sizes, machine.preference, fp=on_gpu
        )
    except InsufficientMemoryError:
        largest = gb(max(machine.devices.sizes))
        return Need(f"does not fit: it needs ≈{least:.0f} GB; this GPU has {largest:.0f} GB", False)
    return Need(plan.describe(), True, plan)


def recommend(machine: Machine) -> ModelSpec | None:
    """The model to install first here (see the module's docs); None where the GPUs cannot be
    seen."""
    if machine.devices is None:
        return None
    if not machine.gpu:
        return get_model(TEST_MODEL)
    fitting = [(spec, need(spec, machine)) for spec in _general_models()]
    for spec, found in fitting:
        if found.whole:
            return spec
    # Nothing fits whole: the smallest that fits at all streams the fewest blocks.
    for spec, found in reversed(fitting):
        if found.fits:
            return spec
    return get_model(TEST_MODEL)


def _general_models() -> list[ModelSpec]:
    """Text-to-video models for anything, largest denoiser first."""
    found = [
        spec
        for spec in catalogue().values()
        if not spec.is_test_model
        and spec.supports(Capability.TEXT)
        and not spec.takes_references
        and not spec.last_frame
    ]
    return sorted(found, key=lambda s: (-_denoiser_params(s), s.vram_gb))


def _denoiser_params(spec: ModelSpec) -> float:
    t = spec.transformer
    return t.published_params * t.count if t else 0.0
