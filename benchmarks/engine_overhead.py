"""What Moviola's engine and media layers cost over calling diffusers and PyAV by hand.

Both paths run the same request on the same tiny pipeline, interleaved in one process so that
they share warm caches and machine load:

  bare     the diffusers pipeline called directly, frames to uint8, a plain PyAV libx264 encode
  moviola  Engine.generate (planning, progress, cancel checks) + media.write_mp4 (atomic write)

and, for the record, `moviola render`, which also writes the thumbnail and spritesheet.

    python benchmarks/engine_overhead.py [--runs 7] [--frames 33] [--steps 4] [--size WxH]

By default the output size is the render size, as with real models, which render at or near the
size asked for. `--size 1280x720` upscales tiny's 160x96 eightfold: there Moviola's Lanczos
scaler keeps more detail than PyAV's default bilinear one, x264 spends more bits on it, and the
ratio reflects that quality difference (about 1.12x on a 2-core machine), not overhead.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np


def bare(
    pipe,
    prompt: str,
    width: int,
    height: int,
    frames: int,
    steps: int,
    seed: int,
    out: Path,
    size: tuple[int, int],
    fps: int,
) -> None:
    import av
    import torch

    video = pipe(
        prompt=prompt,
        height=height,
        width=width,
        num_frames=frames,
        num_inference_steps=steps,
        guidance_scale=5.0,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
    ).frames[0]
    video = (np.clip(video, 0, 1) * 255 + 0.5).astype(np.uint8)
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "medium"}
        for frame in video:
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            container.mux(
                stream.encode(vf.reformat(width=size[0], height=size[1], format="yuv420p"))
            )
        container.mux(stream.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--frames", type=int, default=33)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", default=None, help="output size (default: the render size)")
    args = parser.parse_args()

    from moviola import media
    from moviola.engine import Engine, GenerationRequest, get_model, parse_size
    from moviola.engine.tiny import build_tiny_pipeline
    from moviola.render.files import render

    size = parse_size(args.size) if args.size else None
    spec = get_model("tiny")
    engine = Engine()
    request = GenerationRequest(
        prompt="a paper boat drifting across a pond at dawn",
        model="tiny",
        frames=args.frames,
        steps=args.steps,
        seed=7,
        size=size,
    )
    p = engine.plan(request)
    if len(p.segments) > 1:
        parser.error(
            f"--frames {args.frames} needs {len(p.segments)} segments; the bare path "
            f"makes one: use at most {spec.max_frames}"
        )
    width, height = p.render_size
    size = p.size
    pipe = build_tiny_pipeline(spec)
    pipe.set_progress_bar_config(disable=True)

    times: dict[str, list[float]] = {"bare": [], "moviola": [], "moviola render": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)

        def run_bare() -> None:
            bare(
                pipe,
                request.prompt,
                width,
                height,
                p.segments[0].frames,
                args.steps,
                7,
                tmp / "bare.mp4",
                size,
                p.fps,
            )

        def run_moviola() -> None:
            result = engine.generate(request)
            media.write_mp4(result.frames, tmp / "moviola.mp4", fps=result.fps, size=result.size)

        def run_render() -> None:
            render(engine, request, tmp / "render.mp4")

        runs = {"bare": run_bare, "moviola": run_moviola, "moviola render": run_render}
        for fn in runs.values():  # warm-up: imports, first loads, allocator
            fn()
        for _ in range(args.runs):
            for name, fn in runs.items():
                started = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - started)

    base = statistics.median(times["bare"])
    print(
        f"tiny, {p.segments[0].frames} frames at {width}x{height} → {size[0]}x{size[1]}, "
        f"{args.steps} steps, median of {args.runs} interleaved runs"
    )
    print(f"{'path':<16}{'median s':>10}{'min s':>10}{'ratio':>8}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<16}{median:>10.3f}{min(values):>10.3f}{median / base:>8.2f}x")
    print("goal: moviola ≤ 1.10x bare")


if __name__ == "__main__":
    main()
