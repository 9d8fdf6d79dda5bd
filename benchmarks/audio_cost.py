"""What sound costs: encoding a clip with a stereo soundtrack against encoding it silent.

Encodes 5 seconds of 1280x720 video at 24 fps with the settings a server uses (x264, CRF 18,
preset `medium` by default), once with a 48 kHz stereo soundtrack (AAC-LC, 128 kb/s) and once
without, `--runs` times each. The two alternate, and which goes first alternates too, so that a
machine warming up or slowing down weighs on both alike. Each timing is the whole `write_mp4`
call, including the probe of the result, which decodes the sound. Printed: median and fastest
time of each, and their ratio (goal: sound adds ≤ 3%).

On a shared or small machine x264's own time varies by more than sound costs, so the sound's
own cost is also measured apart: the same clip cropped to 64x36 (preset ultrafast, so the
picture costs next to nothing), with and without the soundtrack, many times; the difference,
over the silent full-size encode, is the overhead with the picture's noise taken out.

The frames are a moving gradient with a little noise, so the encoder does real work, as it does
on generated video; the soundtrack is a few tones with a slow tremolo and some noise, so the
AAC encoder has something to code in every band.

    python benchmarks/audio_cost.py [--runs 5] [--seconds 5] [--size 1280x720] [--preset medium]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from clips import frames

from moviola import media
from moviola.audio import RATE, Audio


def soundtrack(seconds: float, seed: int = 0) -> Audio:
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    tremolo = 0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t)
    left = sum(np.sin(2 * np.pi * hz * t) for hz in (220, 277, 330)) / 3
    right = sum(np.sin(2 * np.pi * hz * t) for hz in (165, 247, 440)) / 3
    noise = rng.normal(0, 0.03, (2, t.size))
    return Audio((0.5 * tremolo * np.stack([left, right]) + noise).astype(np.float32), RATE)


def timed(step) -> tuple[float, float]:
    """Wall time and CPU time (all of the process's threads, x264's included) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    step()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--preset", default="medium")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    clip = frames(round(args.seconds * args.fps), width, height)
    sound = soundtrack(args.seconds)

    names = ("without sound", "with sound")
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for run in range(args.runs):
            for name in names if run % 2 == 0 else names[::-1]:
                path = folder / f"{name.replace(' ', '_')}.mp4"
                audio = sound if name == "with sound" else None
                took, used = timed(
                    lambda path=path, audio=audio: media.write_mp4(
                        clip, path, fps=args.fps, crf=18, preset=args.preset, audio=audio
                    )
                )
                wall[name].append(took)
                cpu[name].append(used)
                sizes[name] = path.stat().st_size

    print(
        f"{args.seconds:g} s of {width}x{height} at {args.fps} fps, preset {args.preset}, "
        f"{args.runs} runs each, interleaved:"
    )
    print(f"  {'':15} {'median':>10} {'fastest':>10} {'CPU median':>11} {'file':>9}")
    for name in names:
        print(
            f"  {name:15} {statistics.median(wall[name]):8.3f} s {min(wall[name]):8.3f} s "
            f"{statistics.median(cpu[name]):9.3f} s {sizes[name] / 1e6:6.2f} MB"
        )
    ratios = {
        "median": statistics.median(wall["with sound"]) / statistics.median(wall["without sound"]),
        "fastest": min(wall["with sound"]) / min(wall["without sound"]),
        "CPU median": statistics.median(cpu["with sound"])
        / statistics.median(cpu["without sound"]),
    }
    print(
        f"  {'with / without':15} {ratios['median']:9.3f}x {ratios['fastest']:9.3f}x "
        f"{ratios['CPU median']:10.3f}x"
    )
    verdict = "within" if ratios["median"] <= 1.03 else "OVER"
    print(
        f"  sound adds {(ratios['median'] - 1) * 100:+.2f} % (median wall): {verdict} the 3% goal"
    )

    small = np.ascontiguousarray(clip[:, :36, :64])
    own = sound_alone(small, sound, fps=args.fps, runs=max(10, 3 * args.runs))
    share = own / statistics.median(wall["without sound"])
    verdict = "within" if share <= 0.03 else "OVER"
    print(
        f"  sound's own cost (on a {small.shape[2]}x{small.shape[1]} clip): {own * 1000:.0f} ms "
        f"= {share * 100:.2f} % of the silent encode: {verdict} the 3% goal"
    )


def sound_alone(clip: np.ndarray, sound: Audio, *, fps: int, runs: int) -> float:
    """Median extra wall time of writing `clip` with `sound` rather than without."""
    extra = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "small.mp4"
        for _ in range(runs):
            took = [
                timed(
                    lambda audio=audio: media.write_mp4(
                        clip, path, fps=fps, preset="ultrafast", audio=audio
                    )
                )[0]
                for audio in (None, sound)
            ]
            extra.append(took[1] - took[0])
    return statistics.median(extra)


if __name__ == "__main__":
    main()
