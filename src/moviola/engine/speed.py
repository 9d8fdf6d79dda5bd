"""Speed presets: what `quality`, `balanced` and `fast` change for one pipeline call, undone after.

- every preset: the attention backend chosen for the device, set on each denoiser; the repeated
  blocks compiled where compiling is on; CFG's two calls batched into one where allowed;
- `balanced`: a step cache (MagCache with the model's published ratios, else FirstBlockCache);
- `fast`: the model's step-distilled LoRA, at its steps and guidance (CFG off), on its sampler;
- with any preset, the job's own LoRAs at their scales (`moviola.engine.lora_run`).

Whatever a job switched on is switched off when its call ends, finished, failed or cancelled, so
a `quality` job after any other gives exactly the frames it gives on a fresh engine. See
docs/speed.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from moviola.engine import attention, batched_cfg, regional_compile, step_caches
from moviola.engine.calls import Call
from moviola.engine.catalogue import Capability, ModelSpec
from moviola.engine.distilled import route_for
from moviola.engine.distilled_run import route_applied
from moviola.engine.lora_run import loras_applied
from moviola.engine.loras import LoraUse

COMPILE_SETTINGS = ("auto", "true", "false")


class Speed(str, Enum):
    """How a request trades quality for time."""

    QUALITY = "quality"  # the model's own steps and guidance, every step computed
    BALANCED = "balanced"  # a step cache skips the steps that barely change the result
    FAST = "fast"  # a step-distilled LoRA: a few steps, no guidance


@dataclass(frozen=True)
class SpeedSettings:
    """A worker's speed settings (every job on it)."""

    attention: str = attention.AUTO  # a diffusers backend name, or auto (chosen per device)
    compile: str = "auto"  # auto (on for CUDA), true, false
    # Guidance as one batch-2 forward: None lets the memory planner decide per request (where
    # both halves' activations fit); True or False forces it.
    batch_cfg: bool | None = None

    def compiles(self, device: str) -> bool:
        if self.compile not in COMPILE_SETTINGS:
            raise ValueError(f"compile must be one of {', '.join(COMPILE_SETTINGS)}")
        return self.compile == "true" or (self.compile == "auto" and _is_cuda(device))

    def batches_cfg(self, planned: bool) -> bool:
        """Whether to batch guidance, given what the memory plan has room for."""
        return self.batch_cfg if self.batch_cfg is not None else planned


def _is_cuda(device: str) -> bool:
    return device.startswith("cuda")


def denoisers(pipe: Any) -> list[Any]:
    """The pipeline's denoisers: `transformer`, and `transformer_2` where there is one."""
    found = [getattr(pipe, "transformer", None), getattr(pipe, "transformer_2", None)]
    return [d for d in found if d is not None]


@contextmanager
def applied(
    pipe: Any,
    spec: ModelSpec,
    call: Call,
    speed: Speed,
    *,
    settings: SpeedSettings,
    device: str,
    backend: str,
    models_dir: Path | None,
    defaults: dict[str, Any],
    batch_cfg: bool = False,
    loras: Sequence[LoraUse] = (),
) -> Iterator[None]:
    """`pipe` runs `call` at `speed` inside the block; `defaults` (the call's keyword arguments
    before the call's own) take the route's where `fast` needs others. `batch_cfg`: the memory
    plan has room for both halves of guidance in one forward. `loras`: the job's own LoRAs, on
    at their scales (beside a `fast` route's)."""
    models = denoisers(pipe)
    cached = speed is Speed.BALANCED
    with ExitStack() as undo:
        attention.apply(models, backend)
        if settings.compiles(device):
            regional_compile.ensure(models, "parts" if cached else "blocks")
        if speed is Speed.FAST:
            route = route_for(spec)
            if route is None:  # planning refuses these; a folder of another model could not
                raise ValueError(f"{spec.id} has no step-distilled route")
            defaults.update(route.call_overrides)
            if route.sigmas is not None and call.steps == len(route.sigmas):
                defaults["sigmas"] = list(route.sigmas)
            undo.enter_context(
                route_applied(pipe, spec, route, models_dir, call.generator, loras=loras)
            )
        elif loras:
            undo.enter_context(loras_applied(pipe, loras))
        if cached:
            undo.callback(step_caches.disable, models)
            strength = call.strength if call.capability is Capability.VIDEO else None
            step_caches.enable(pipe, models, spec, call.capability, call.steps, strength)
        elif settings.batches_cfg(batch_cfg) and batched_cfg.applies_to(pipe):
            undo.enter_context(batched_cfg.batched(pipe, models))
        yield
