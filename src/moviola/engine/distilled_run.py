"""A step-distilled route switched on for one job, on the warm pipeline, and off again after.

The LoRA is loaded once into the pipeline's denoisers (`load_lora_weights`, into
`transformer_2` for the low-noise expert of Wan 2.2 A14B) and kept there, disabled, between
jobs: a later `fast` job only enables it. A disabled adapter computes exactly the base layer, so
other jobs on the same pipeline are unchanged. A job's own LoRAs (`moviola.engine.lora_run`) are
set beside it, each at its scale. The route's sampler replaces the pipeline's
scheduler for the job and the pipeline's own comes back after it, cancelled or not.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from moviola.engine import lora_run
from moviola.engine.catalogue import ModelSpec
from moviola.engine.distilled import Route, find_files
from moviola.engine.loras import LoraUse


@contextmanager
def route_applied(
    pipe: Any,
    spec: ModelSpec,
    route: Route,
    models_dir: Path | None,
    generator: Any,
    loras: Sequence[LoraUse] = (),
) -> Iterator[None]:
    """`pipe` runs `route` inside the block, with the job's own `loras` beside it; `generator`
    draws the re-noising of a "renoise" sampler, after the pipeline has drawn its starting noise
    from it."""
    scheduler = pipe.scheduler
    try:
        _load(pipe, spec, route, models_dir)
        lora_run.activate(pipe, {route.adapter: 1.0, **lora_run.load(pipe, loras)})
        pipe.scheduler = job_scheduler(scheduler, route, generator)
        yield
    finally:
        pipe.scheduler = scheduler
        # Also after a load that failed half way: no adapter stays on for the next job.
        lora_run.switch_off(pipe)


def adapter_holders(pipe: Any, adapter: str) -> list[Any]:
    """The pipeline's components that hold `adapter` (a LoRA may reach beyond the denoiser:
    LTX-2's also adapts its text connectors)."""
    holders = []
    for name in getattr(pipe, "_lora_loadable_modules", ()):
        component = getattr(pipe, name, None)
        if adapter in (getattr(component, "peft_config", None) or {}):
            holders.append(component)
    return holders


def _load(pipe: Any, spec: ModelSpec, route: Route, models_dir: Path | None) -> None:
    """Load the route's LoRA files into their denoisers, unless already there."""
    for file, path in find_files(spec, route, models_dir):
        denoiser = getattr(pipe, file.into)
        if route.adapter in (getattr(denoiser, "peft_config", None) or {}):
            continue
        weights: Any = str(path) if path is not None else _built_in(file.filename)
        # One adapter name in both of Wan 2.2's experts: each holds its own weights under it.
        pipe.load_lora_weights(
            weights,
            adapter_name=route.adapter,
            **({"load_into_transformer_2": True} if file.into == "transformer_2" else {}),
        )


def _built_in(filename: str) -> dict[str, Any]:
    from moviola.engine.tiny import TINY_DISTILLED_LORA, build_tiny_distilled_lora

    if filename != TINY_DISTILLED_LORA:
        raise ValueError(f"{filename} is not a built-in LoRA")
    return build_tiny_distilled_lora()


def job_scheduler(scheduler: Any, route: Route, generator: Any) -> Any:
    """The scheduler a job of `route` runs: the pipeline's own (at the route's shift where it
    has one), or a flow-matching one on the route's grid."""
    if route.sampler == "own":
        if route.shift is None:
            return scheduler
        key = "flow_shift" if "flow_shift" in scheduler.config else "shift"
        return type(scheduler).from_config(scheduler.config, **{key: route.shift})
    return distilled_scheduler(
        shift=route.shift or 1.0, renoise=route.sampler == "renoise", generator=generator
    )


def distilled_scheduler(shift: float, renoise: bool, generator: Any) -> Any:
    """A flow-matching scheduler on the distilled grid: the unshifted noise levels 1, 1 - 1/n,
    …, 1/n (LightX2V's denoising_step_list), shifted by `shift`."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    class DistilledFlowScheduler(FlowMatchEulerDiscreteScheduler):
        def set_timesteps(
            self, num_inference_steps: int | None = None, device: Any = None, **kwargs: Any
        ) -> None:
            steps = num_inference_steps or len(kwargs.get("sigmas") or []) or 1
            FlowMatchEulerDiscreteScheduler.set_timesteps(
                self, sigmas=[1.0 - i / steps for i in range(steps)], device=device
            )

        def step(self, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("generator") is None:
                kwargs["generator"] = generator
            return FlowMatchEulerDiscreteScheduler.step(self, *args, **kwargs)

    return DistilledFlowScheduler(shift=shift, stochastic_sampling=renoise)
