"""`moviola generate`: a prompt (and optionally an image or a video) to an MP4, no server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from moviola.cli.failures import one_line_errors

if TYPE_CHECKING:
    import numpy as np

    from moviola.config import Settings
    from moviola.engine.catalogue import ModelSpec
    from moviola.render.files import RenderedFiles


def generate(
    prompt: str = typer.Argument(..., help="What the video shows."),
    model: str = typer.Option(
        None, "--model", "-m", help="Catalogue id, alias (sora-2) or a diffusers folder."
    ),
    output: Path = typer.Option(None, "--output", "-o", help="Where to write the MP4."),
    size: str = typer.Option(None, help="Output WIDTHxHEIGHT, e.g. 1280x720 (any size)."),
    seconds: float = typer.Option(None, help="Length in seconds (longer ones chain segments)."),
    frames: int = typer.Option(None, help="Length in frames, instead of --seconds."),
    fps: int = typer.Option(None, help="Frames per second (default: the model's)."),
    image: Path = typer.Option(None, help="First frame: animate this image."),
    last_image: Path = typer.Option(
        None,
        "--last-image",
        help="Last frame, with --image as the first: the video runs from one to the other "
        "(a first-and-last-frame model, such as wan2.1-flf2v-14b-720p).",
    ),
    video: Path = typer.Option(None, help="Source video to re-render (video → video)."),
    extend: Path = typer.Option(None, help="Video to continue by --seconds."),
    strength: float = typer.Option(0.6, help="With --video: 0 keeps the source, 1 ignores it."),
    audio: str = typer.Option(
        "auto",
        help="Sound: auto (the model's own, else the source's), none, soundtrack (made from "
        "the prompt), or with --video add (keep the picture, make only its sound).",
    ),
    speed: str = typer.Option(
        "quality",
        help="quality (every step), balanced (a step cache), fast (a step-distilled LoRA: a few "
        "steps, no guidance; `moviola models pull MODEL --fast` fetches it).",
    ),
    lora: list[str] = typer.Option(
        None,
        "--lora",
        help="A LoRA from the library at a scale, NAME:SCALE (scale -2 to 2, default 1); "
        "repeat for several (`moviola loras list` shows them).",
    ),
    negative_prompt: str = typer.Option(None, "--negative-prompt", "-n"),
    steps: int = typer.Option(None, help="Denoising steps (default: the model's)."),
    guidance: float = typer.Option(None, help="Guidance scale (default: the model's)."),
    seed: int = typer.Option(None, help="Seed; the same seed and request give the same video."),
    device: str = typer.Option(None, help="auto, cpu, cuda, cuda:1 …"),
    memory: str = typer.Option(
        None,
        help="auto (the fastest placement that fits the GPU), speed (everything resident) or "
        "low (the leanest); see `moviola models plan`.",
    ),
    vae_tiling: bool = typer.Option(
        None,
        "--vae-tiling/--no-vae-tiling",
        help="Decode in tiles (default: only where an untiled decode would not fit).",
    ),
    crf: int = typer.Option(None, help="H.264 quality: lower is better and bigger (default 18)."),
) -> None:
    """Generate a video from a prompt, an image or a video, and write it as MP4."""
    console = Console(stderr=True)
    with one_line_errors():
        from moviola import media
        from moviola.cli.loras import parse_uses
        from moviola.cli.progress import GenerationBar
        from moviola.config import get_settings
        from moviola.engine import Engine, GenerationRequest, Placement, parse_size
        from moviola.engine.distilled import check_lora
        from moviola.engine.memory import preference_of
        from moviola.engine.speed import SpeedSettings
        from moviola.render.files import render, seal
        from moviola.render.stamp import Stamp

        settings = get_settings()
        model_id = settings.resolve_model(model or settings.default_model)
        preference = preference_of(memory or settings.memory)
        source_path = video or extend
        request = GenerationRequest(
            prompt=prompt,
            model=model_id,
            negative_prompt=negative_prompt,
            size=parse_size(size) if size else None,
            seconds=seconds,
            frames=frames,
            fps=fps,
            steps=steps,
            guidance=guidance,
            seed=seed,
            strength=strength,
            image=media.load_image(image, max_pixels=settings.max_input_pixels) if image else None,
            last_image=(
                media.load_image(last_image, max_pixels=settings.max_input_pixels)
                if last_image
                else None
            ),
            video=_read_video(video, settings) if video else None,
            extend=_read_video(extend, settings) if extend else None,
            audio=audio,
            speed=speed,
            loras=parse_uses(lora or []),
            source_audio=(
                media.decode_audio(source_path, max_duration_s=settings.max_input_seconds)
                if source_path
                else None
            ),
            soundtrack_model=settings.soundtrack_model,
            max_prompt_chars=settings.max_prompt_chars,
            max_seconds=settings.max_seconds,
        )
        engine = Engine(
            models_dir=settings.models_path,
            placement=Placement(
                device or settings.device,
                preference,
                settings.vae_tiling if vae_tiling is None else vae_tiling,
            ),
            speed=SpeedSettings(settings.attention_backend, settings.compile),
        )
        plan = engine.plan(request)  # bad input fails here, before any model loads
        check_lora(plan, settings.models_path)  # and a missing step-distilled LoRA too
        if plan.spec.is_test_model:
            console.print(f"[yellow]{plan.spec.id} is a test model: it makes noise.[/]")
        output = output or Path(_default_name(prompt, plan.seed))
        request.seed = plan.seed
        stamp = Stamp.from_settings(settings).from_source(
            source_path, source_path.name if source_path else None
        )
        with GenerationBar(console) as bar:
            files = render(
                engine,
                request,
                output,
                on_progress=bar.update,
                crf=crf if crf is not None else settings.crf,
                preset=settings.x264_preset,
                stamp=stamp,
            )
        _report(Console(), seal(files, stamp), plan.spec)


def _read_video(path: Path, settings: Settings) -> np.ndarray:
    from moviola import media

    frames, _ = media.decode_frames(
        path,
        max_pixels=settings.max_input_pixels,
        max_duration_s=settings.max_input_seconds,
    )
    return frames


def _default_name(prompt: str, seed: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:48].rstrip("-") or "video"
    return f"{slug}-{seed}.mp4"


def _report(console: Console, files: RenderedFiles, spec: ModelSpec) -> None:
    result, info = files.summary, files.info
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row(
        "video",
        f"{files.video}  ({info.width}x{info.height}, {info.fps} fps, "
        f"{info.frames} frames, {info.duration:.2f} s, {info.size_bytes:,} bytes)",
    )
    table.add_row("thumbnail", str(files.thumbnail))
    table.add_row("spritesheet", str(files.spritesheet))
    table.add_row(
        "model", f"{result.model}" + ("  (test model: noise)" if spec.is_test_model else "")
    )
    table.add_row("seed", str(result.seed))
    table.add_row(
        "rendered at",
        f"{result.render_size[0]}x{result.render_size[1]}, "
        f"{result.segments} segment(s), {result.steps} steps",
    )
    if info.audio is not None:
        made_by = {"model": "by the model", "source": "the source's", "soundtrack": "soundtrack"}
        table.add_row(
            "sound",
            f"{info.audio.codec}, {info.audio.sample_rate} Hz, {info.audio.channels} ch, "
            f"{made_by.get(result.audio_kind or '', 'kept')}",
        )
    else:
        table.add_row("sound", "none")
    table.add_row("timings", "  ".join(f"{k} {v:.2f}s" for k, v in files.timings.items()))
    if files.credentials:
        c = files.credentials
        table.add_row("credentials", f"C2PA, {c['state']}, signed by {c['signer']}")
    console.print(table)
