"""`moviola models plan MODEL`: how a request would fit a GPU, before anything loads."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from moviola.cli.failures import one_line_errors

if TYPE_CHECKING:
    from moviola.engine import ModelSpec


def plan(
    model: str = typer.Argument(..., help="A catalogue id, alias or diffusers folder."),
    size: str = typer.Option(None, help="WIDTHxHEIGHT (default: the model's first native size)."),
    seconds: float = typer.Option(None, help="Length (default: the model's longest segment)."),
    gpu_memory: float = typer.Option(
        None, "--gpu-memory", help="GB of the GPU to plan for (default: this machine's devices)."
    ),
    memory: str = typer.Option(None, help="auto, speed or low (default: the setting)."),
) -> None:
    """Print the memory plan (placement, VAE tiling, estimated peak) of one request.

    Exits 2, saying how much it needs, when no placement fits.
    """
    with one_line_errors():
        from moviola.config import get_settings
        from moviola.engine import GenerationRequest, parse_size
        from moviola.engine.memory import (
            GIB,
            LADDER,
            folder_params,
            footprint,
            gb,
            peak,
            plan_for,
            preference_of,
            with_params,
        )
        from moviola.engine.request import plan as plan_request
        from moviola.jobs.devices import Devices, devices_of

        settings = get_settings()
        spec, weights = _model(settings.resolve_model(model), settings.models_path)
        request = GenerationRequest(
            "plan", model=spec.id, size=parse_size(size) if size else None, seconds=seconds
        )
        resolved = plan_request(request, spec)
        width, height = resolved.render_size
        frames = max(s.frames for s in resolved.segments)
        sized = with_params(spec, *folder_params(weights)) if weights else spec
        preference = preference_of(memory or settings.memory)
        if gpu_memory is not None:
            devices: Devices | None = Devices((int(gpu_memory * GIB),), accelerator=True)
        else:
            devices = devices_of(settings)
        if devices is None:
            raise typer.BadParameter("this server's GPUs are not visible: give --gpu-memory")
        fp = footprint(sized, width, height, frames, accelerator=devices.accelerator)

        console = Console()
        where = "GPU" if devices.accelerator else "CPU (RAM)"
        sizes = ", ".join(f"{gb(s):.1f} GB" for s in devices.sizes)
        console.print(
            f"{spec.id} at {width}x{height}, {frames} frames per call, on {where}: {sizes}"
        )
        console.print(
            f"weights ≈ {gb(fp.weights):.1f} GB (denoiser {gb(fp.denoiser):.1f}, encoders "
            f"{gb(fp.encoders):.1f}, VAE {gb(fp.decoders):.1f}); one denoiser forward "
            f"≈ {gb(fp.activations):.1f} GB; VAE decode ≈ {gb(fp.decode):.1f} GB untiled, "
            f"{gb(fp.decode_tiled):.1f} GB tiled"
        )
        if devices.accelerator:
            table = Table(title="placements, fastest first")
            table.add_column("placement")
            table.add_column("peak, VAE untiled", justify="right")
            table.add_column("peak, VAE tiled", justify="right")
            for mode, fp8 in LADDER:
                untiled = peak(fp, mode, fp8=fp8, tiled=False)
                tiled = peak(fp, mode, fp8=fp8, tiled=True)
                name = mode.value + (" + fp8" if fp8 else "")
                table.add_row(name, f"{gb(untiled):.1f} GB", f"{gb(tiled):.1f} GB")
            console.print(table)
        chosen = plan_for(
            spec,
            width,
            height,
            frames,
            devices.sizes,
            preference,
            accelerator=devices.accelerator,
            fp=fp,
            vae_tiling=settings.vae_tiling,
        )
        console.print(f"plan ({preference.value}): {chosen.describe()}")


def _model(name: str, models_dir: Path) -> tuple[ModelSpec, Path | None]:
    """The entry and, where they are here, its weights: a plan needs no weights (the
    catalogue's sizes stand in), but uses a folder's own sizes when there is one."""
    from moviola.engine import WeightsNotFoundError
    from moviola.engine.loading import resolve_model

    try:
        return resolve_model(name, models_dir)
    except WeightsNotFoundError:
        from moviola.engine import get_model

        return get_model(name), None
