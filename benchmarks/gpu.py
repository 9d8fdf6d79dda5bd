"""The GPU benchmark: bare diffusers against Moviola at each speed preset, on full-size models.

    python benchmarks/gpu.py [--models wan2.1-t2v-1.3b,wan2.2-ti2v-5b] [--steps 10] [--budget 450]
    python benchmarks/gpu.py --tiny          # the same rows on a CPU, at the tiny model's size

For each model it builds the real full-size pipeline with random weights on the GPU (nothing is
downloaded: see gpu_models.py), saves it once as a diffusers folder with its `moviola.json`
marker, and times, in this order:

  bare diffusers     `WanPipeline.from_pretrained(folder)` called directly, as diffusers'
                     documentation runs Wan: bf16, VAE in float32 and untiled, PyTorch's SDPA
  moviola quality    `Engine.generate` from the folder with `speed="quality"`
  moviola balanced   ... `speed="balanced"` (a step cache)
  moviola fast       ... `speed="fast"` (the route's step-distilled LoRA, a random one of its
                     rank and layers written where the preset looks for it)

Each row runs 2 warm-up steps (compiling where Moviola compiles), then `--steps` steps, each one
timed after the GPU's queued work; the job estimate is the measured text encoding + 50 steps at
the measured rate (`fast`: its own few steps; `balanced`: the steps its cache computes, at their
measured rate, and the skipped ones at theirs) + the measured decode. Also recorded: s/step,
decode seconds, peak memory, TFLOP/s and MFU (FLOPs per forward from the model's config), the
ratio to bare diffusers, the torch/CUDA/cuDNN versions, an 8192³ bf16 matmul probe, which kernel
PyTorch's SDPA picks at the model's attention shape, and what Moviola's loader makes of the folder
without its marker.

Rows run in order, each in its own try/except and deadline; a row that no longer fits the budget
is skipped. `$OUT/gpu_bench.json` and `$OUT/gpu_bench.md` (OUT defaults to ./bench-out) are
rewritten after every row, so a run stopped at any point keeps what it did. No hub access at run
time (HF_HUB_OFFLINE=1). See docs/performance.md.
"""

from __future__ import annotations

import os

# Set before any Hugging Face library loads: the benchmark builds everything it runs.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

import argparse
import contextlib
import itertools
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# The checkout's own Moviola, whatever the environment has installed: a virtualenv carried to
# another machine points its editable install at a path that is not there.
_SRC = Path(__file__).resolve().parents[1] / "src"
if (_SRC / "moviola").is_dir():
    sys.path.insert(0, str(_SRC))

import gpu_models  # noqa: E402
import gpu_probes  # noqa: E402
import gpu_report  # noqa: E402
from gpu_models import Kit  # noqa: E402

PROMPT = "a corgi surfing a wave at sunset, golden light, spray in the air"
PRESETS = ("quality", "balanced", "fast")
WARMUP_STEPS = 2
GRACE_S = 20  # past the budget, a row that cannot be stopped (a load, a compile) is abandoned


class RowTimeout(Exception):
    """A row ran past its deadline and was stopped between two steps."""


class _WarmedUp(Exception):
    """The warm-up's steps are done: stop before the decode."""


class StepClock:
    """Marks inside one pipeline call, each taken after the device's queued work is done: the
    call's start, the denoiser's first forward, the end of every step."""

    def __init__(self, device: str, deadline: float):
        self.device, self.deadline = device, deadline
        self.began: float | None = None
        self.denoising: float | None = None
        self.ends: list[float] = []

    def now(self) -> float:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(torch.device(self.device))
        return time.perf_counter()

    def start(self) -> None:
        self.began = self.now()

    def first_forward(self, *_: Any) -> None:
        if self.denoising is None:
            self.denoising = self.now()

    def step_done(self) -> None:
        self.ends.append(self.now())

    def step_times(self) -> list[float]:
        assert self.denoising is not None
        marks = [self.denoising, *self.ends]
        return [b - a for a, b in itertools.pairwise(marks)]

    def past_deadline(self) -> bool:
        return time.perf_counter() > self.deadline


class Run:
    """One benchmark run: its settings, its results so far, and the budget."""

    def __init__(self, args: argparse.Namespace, out: Path):
        self.args, self.out = args, out
        self.device: str = args.device
        self.started = time.perf_counter()
        self.deadline = self.started + args.budget
        self.current: dict[str, Any] | None = None
        self.tmp: Path | None = None
        self.lock = threading.Lock()
        self.doc: dict[str, Any] = {
            "benchmark": "moviola gpu",
            "mode": "tiny" if args.tiny else "full",
            "started": _stamp(),
            "finished": None,
            "budget_s": args.budget,
            "steps": args.steps,
            "warmup_steps": WARMUP_STEPS,
            "job_steps": gpu_report.JOB_STEPS,
            "prompt": PROMPT,
            "speed_settings": {"attention": args.attention, "compile": args.compile},
            "environment": None,
            "probes": {},
            "models": {},
            "rows": [],
        }

    @property
    def dtypes(self) -> tuple[Any, Any]:
        """(the model's dtype, the Wan VAE's), as Moviola loads them on this device."""
        import torch

        if self.device.startswith("cuda"):
            return torch.bfloat16, torch.float32
        return torch.float32, torch.float32

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def save(self) -> None:
        with self.lock:
            gpu_report.write(self.out, self.doc)

    def attempt(
        self, entry: dict[str, Any], estimate: float, body: Callable[[dict[str, Any], float], None]
    ) -> bool:
        """Run `body(entry, deadline)` unless the budget is short; record how it ended."""
        left = self.left()
        if left < estimate:
            entry.update(
                status="skipped",
                reason=f"{max(left, 0):.0f} s of the budget left; it takes about {estimate:.0f} s",
            )
            self.save()
            return False
        began = time.perf_counter()
        deadline = began + min(3 * estimate, left)
        self.current = entry
        try:
            body(entry, deadline)
            entry["status"] = "ok"
        except RowTimeout:
            entry.update(
                status="timeout", reason=f"stopped at its deadline ({deadline - began:.0f} s)"
            )
        except Exception as err:
            entry.update(status="error", reason=f"{type(err).__name__}: {_first_line(err)}")
            entry.setdefault("details", {})["traceback"] = traceback.format_exc(limit=8)[-4000:]
        finally:
            self.current = None
            entry["wall_s"] = round(time.perf_counter() - began, 2)
            self.save()
        _say(self, entry)
        return entry["status"] == "ok"

    def abandon(self) -> None:
        """The budget and its grace are spent inside a row that cannot stop: record, clean up,
        leave (the rows before it are on disk already)."""
        if self.current is not None:
            self.current.update(status="timeout", reason="the run's budget ran out inside it")
        self.doc["stopped"] = "budget"
        # The main thread may be changing the results as they are written: the last save stands.
        with contextlib.suppress(Exception):
            self.save()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
        print(f"budget spent: results so far in {self.out}", file=sys.stderr)
        os._exit(3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny model's dimensions, on a CPU")
    parser.add_argument(
        "--models",
        default=None,
        help=f"comma-separated, of {', '.join(gpu_models.FULL_SIZE)} (default: the first)",
    )
    parser.add_argument("--steps", type=int, default=None, help="timed steps per row (10; tiny 4)")
    parser.add_argument("--budget", type=float, default=450, help="seconds for the whole run")
    parser.add_argument("--device", default=None, help="cuda (default), or cpu with --tiny")
    parser.add_argument("--attention", default="auto", help="Moviola's attention backend setting")
    parser.add_argument("--compile", default="auto", choices=("auto", "true", "false"))
    args = parser.parse_args()
    if args.tiny and args.models:
        parser.error("--tiny runs the tiny model; --models names full-size ones")
    args.steps = args.steps or (4 if args.tiny else 10)
    if args.steps < 2:
        parser.error("--steps must be at least 2")
    args.device = args.device or ("cpu" if args.tiny else "cuda")
    names = (args.models or next(iter(gpu_models.FULL_SIZE))).split(",")
    for name in names:
        if name not in gpu_models.FULL_SIZE:
            parser.error(f"--models: {name!r} is not one of {', '.join(gpu_models.FULL_SIZE)}")

    import diffusers
    import torch
    import transformers

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("no CUDA device here: the full-size run needs a GPU (--tiny runs on a CPU)")
    # One line per row on stderr, not a progress bar per component loaded.
    for library in (diffusers, transformers):
        library.utils.logging.set_verbosity_error()
        library.utils.logging.disable_progress_bar()

    run = Run(args, Path(os.environ.get("OUT") or "bench-out"))
    watchdog = threading.Timer(args.budget + GRACE_S, run.abandon)
    watchdog.daemon = True
    watchdog.start()
    run.doc["environment"] = gpu_probes.environment(run.device)
    try:
        run.doc["probes"]["matmul"] = gpu_probes.matmul_probe(run.device)
    except Exception as err:
        run.doc["probes"]["matmul"] = {"error": f"{type(err).__name__}: {_first_line(err)}"}
    run.save()
    kits = [gpu_models.tiny_kit()] if args.tiny else [gpu_models.kit(n) for n in names]
    for kit in kits:
        bench_model(run, kit)
    watchdog.cancel()
    run.doc["finished"] = _stamp()
    run.save()
    print(gpu_report.markdown(run.doc))
    print(f"results: {run.out / 'gpu_bench.json'}, {run.out / 'gpu_bench.md'}", file=sys.stderr)


def bench_model(run: Run, kit: Kit) -> None:
    from moviola.engine import get_model, memory

    spec = get_model(kit.model)
    width, height = kit.size
    tokens = memory.tokens(spec, width, height, kit.frames)
    setup: dict[str, Any] = {
        "model": kit.model,
        "row": "setup",
        "status": "running",
        "reason": None,
        "size": list(kit.size),
        "frames": kit.frames,
        "tokens": tokens,
        "flops_per_forward": gpu_report.flops_per_forward(kit.transformer.config, tokens),
        "details": {},
    }
    run.doc["models"][kit.model] = setup
    rows = [gpu_report.new_row(kit.model, name) for name in ("bare diffusers", *PRESETS)]
    run.doc["rows"] += rows
    run.tmp = Path(tempfile.mkdtemp(prefix="moviola-gpu-bench-"))
    folder = run.tmp / kit.folder_name
    try:
        if not run.attempt(setup, kit.estimates["setup"], lambda e, d: _setup(run, kit, folder, e)):
            for row in rows:
                row.update(status="skipped", reason=f"setup {setup['status']}")
            run.save()
            return
        run.attempt(rows[0], kit.estimates["bare"], lambda r, d: bare_row(run, kit, folder, r, d))
        engine = _engine(run, run.tmp / "models")
        for row, preset in zip(rows[1:], PRESETS, strict=True):

            def timed_row(row: dict[str, Any], deadline: float, preset: str = preset) -> None:
                moviola_row(run, engine, kit, folder, preset, row, deadline)

            run.attempt(row, kit.estimates[preset], timed_row)
            gpu_report.compare(row, rows[0])
        engine.pipelines.clear()
        if kit.model == "wan2.1-t2v-1.3b" and run.device.startswith("cuda"):
            setup["goals"] = _goals(rows)
        run.save()
    finally:
        shutil.rmtree(run.tmp, ignore_errors=True)
        run.tmp = None
        gpu_models.free(run.device)


def _setup(run: Run, kit: Kit, folder: Path, setup: dict[str, Any]) -> None:
    config = kit.transformer.config
    try:
        setup["sdpa"] = gpu_probes.sdpa_probe(
            run.device, config["num_attention_heads"], setup["tokens"], config["attention_head_dim"]
        )
    except Exception as err:  # the probe informs; the rows do not need it
        setup["sdpa"] = {"error": f"{type(err).__name__}: {_first_line(err)}"}
    gpu_models.free(run.device)
    dtype, vae_dtype = run.dtypes
    began = time.perf_counter()
    saved = gpu_models.save(kit, run.device, dtype, vae_dtype, folder)
    setup["details"]["build_and_save_s"] = round(time.perf_counter() - began, 2)
    setup.update(saved)


def bare_row(run: Run, kit: Kit, folder: Path, row: dict[str, Any], deadline: float) -> None:
    """The pipeline called directly, loaded as diffusers' documentation loads Wan."""
    import torch
    from diffusers import AutoencoderKLWan, WanPipeline

    from moviola.engine import get_model
    from moviola.engine.meter import DeviceMeter

    dtype, vae_dtype = run.dtypes
    began = time.perf_counter()
    vae = AutoencoderKLWan.from_pretrained(str(folder), subfolder="vae", dtype=vae_dtype)
    pipe = WanPipeline.from_pretrained(str(folder), vae=vae, dtype=dtype).to(run.device)
    pipe.set_progress_bar_config(disable=True)
    row["load_s"] = round(time.perf_counter() - began, 2)
    guidance = get_model(kit.model).default_guidance
    width, height = kit.size

    def call(steps: int, on_step: Callable[[], None]) -> Any:
        def callback(_pipe: Any, _index: int, _t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            on_step()
            return tensors

        return pipe(
            prompt=PROMPT,
            height=height,
            width=width,
            num_frames=kit.frames,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=torch.Generator().manual_seed(0),
            output_type="np",
            callback_on_step_end=callback,
        )

    try:
        warm = StepClock(run.device, deadline)
        began = time.perf_counter()
        with contextlib.suppress(_WarmedUp):
            call(WARMUP_STEPS, lambda: _warm_step(warm))
        row["warmup_s"] = round(time.perf_counter() - began, 2)

        clock = StepClock(run.device, deadline)

        def step() -> None:
            clock.step_done()
            if clock.past_deadline():
                raise RowTimeout()

        hook = pipe.transformer.register_forward_pre_hook(clock.first_forward)
        meter = DeviceMeter(run.device)
        clock.start()
        try:
            call(run.args.steps, step)
        finally:
            hook.remove()
        end = clock.now()
        peak = meter.lap()
    finally:
        pipe = vae = None  # the memory goes back before the engine loads its own copy
        gpu_models.free(run.device)
    assert clock.began is not None and clock.denoising is not None
    row.update(
        steps=run.args.steps,
        job_steps=gpu_report.JOB_STEPS,
        forwards_per_step=2 if guidance > 1 else 1,
        encode_s=round(clock.denoising - clock.began, 3),
        decode_s=round(end - clock.ends[-1], 3),
        peak_gb=_gb(peak),
    )
    row["details"].update(vae_tiling=False, attention="native (PyTorch SDPA)")
    _figures(run, row, clock.step_times(), None, None)


def _warm_step(clock: StepClock) -> None:
    clock.step_done()
    if len(clock.ends) >= WARMUP_STEPS:
        raise _WarmedUp()


def _engine(run: Run, models_dir: Path) -> Any:
    from moviola.engine import Engine, Placement
    from moviola.engine.speed import SpeedSettings

    return Engine(
        models_dir=models_dir,
        placement=Placement(device=run.device),
        speed=SpeedSettings(attention=run.args.attention, compile=run.args.compile),
    )


def moviola_row(
    run: Run,
    engine: Any,
    kit: Kit,
    folder: Path,
    preset: str,
    row: dict[str, Any],
    deadline: float,
) -> None:
    """`Engine.generate` from the folder at `preset`: a warm-up that stops before its decode,
    then the timed job."""
    from moviola.engine import (
        CancelToken,
        GenerationCancelled,
        GenerationRequest,
        Progress,
        Stage,
        get_model,
    )
    from moviola.engine.distilled import route_for

    if preset == "fast":
        row["details"]["lora"] = [
            str(p.name) for p in gpu_models.save_random_lora(kit, engine.models_dir)
        ]
        route = route_for(get_model(kit.model))
        row["details"]["route"] = route.name if route else None

    def request(steps: int | None) -> Any:
        return GenerationRequest(
            PROMPT,
            model=str(folder),
            size=kit.size,
            frames=kit.frames,
            steps=steps,
            seed=0,
            speed=preset,
        )

    counters = _compile_counters()
    warm = StepClock(run.device, deadline)
    stages: dict[Stage, float] = {}

    def warm_progress(p: Progress) -> None:
        stages.setdefault(p.stage, time.perf_counter())
        if p.stage is Stage.DENOISING and p.step >= 1:
            warm.step_done()

    began = time.perf_counter()
    try:
        engine.generate(
            request(WARMUP_STEPS),
            on_progress=warm_progress,
            cancel=CancelToken(lambda: len(warm.ends) >= WARMUP_STEPS or warm.past_deadline()),
        )
    except GenerationCancelled:
        if warm.past_deadline():
            raise RowTimeout() from None
    row["warmup_s"] = round(time.perf_counter() - began, 2)
    if Stage.ENCODING_PROMPT in stages and Stage.LOADING in stages:
        row["load_s"] = round(stages[Stage.ENCODING_PROMPT] - stages[Stage.LOADING], 2)

    spec, pipe = _loaded_pipeline(engine, folder)
    clock = StepClock(run.device, deadline)
    runs: list[int] = []  # per step: how many of its forwards ran the whole denoiser
    counted = [0]
    hook = None
    if preset == "balanced":
        # The last block's first norm runs only when the step cache did not skip the forward.
        last = pipe.transformer.blocks[-1]
        hook = last.norm1.register_forward_pre_hook(
            lambda *_: counted.__setitem__(0, counted[0] + 1)
        )

    def progress(p: Progress) -> None:
        if p.stage is Stage.DENOISING and p.step == 0:
            clock.first_forward()
        elif p.stage is Stage.DENOISING:
            clock.step_done()
            runs.append(counted[0] - sum(runs))

    try:
        result = engine.generate(
            request(None if preset == "fast" else run.args.steps),
            on_progress=progress,
            cancel=CancelToken(clock.past_deadline),
        )
    except GenerationCancelled:
        raise RowTimeout() from None
    finally:
        if hook is not None:
            hook.remove()
    row.update(
        steps=result.steps,
        job_steps=result.steps if preset == "fast" else gpu_report.JOB_STEPS,
        forwards_per_step=2 if result.guidance > 1 else 1,
        encode_s=round(result.timings["encoding_prompt"], 3),
        decode_s=round(result.timings["decoding"], 3),
        peak_gb=_gb(max(result.peak_memory.values(), default=None)),
        planned_peak_gb=_gb(result.memory.peak_bytes) if result.memory else None,
    )
    row["details"].update(_moviola_details(engine, spec, pipe, result, preset))
    row["details"]["compile"] = _compile_counters(since=counters)
    computed, in_job = None, None
    if preset == "balanced":
        computed, in_job = _cache_schedule(kit, runs, row)
    _figures(run, row, clock.step_times(), computed, in_job)


def _loaded_pipeline(engine: Any, folder: Path) -> tuple[Any, Any]:
    """The spec the engine takes `folder` for, and the text-to-video pipeline it holds for it
    (loaded by the warm-up)."""
    from moviola.engine import Capability
    from moviola.engine.loading import resolve_model

    spec, weights = resolve_model(str(folder))
    memory = engine.pipelines.memory_of(spec, weights, engine.placement)
    return spec, engine.pipelines.get(spec, weights, Capability.TEXT, engine.placement, memory)


def _moviola_details(engine: Any, spec: Any, pipe: Any, result: Any, preset: str) -> dict[str, Any]:
    from moviola.engine import Capability, attention, regional_compile, step_caches

    choice = engine.check_speed_settings()
    details: dict[str, Any] = {
        "attention": attention.backend_of(pipe.transformer),
        "attention_fallback": choice.fallback,
        "compiled": regional_compile.form_of(pipe.transformer),
        "memory": result.memory.describe() if result.memory else None,
        "vae_tiling": bool(result.memory.vae_tiling) if result.memory else None,
        "vae_retried_tiled": result.vae_retried_tiled,
        "guidance": result.guidance,
        "stage_seconds": {k: round(v, 3) for k, v in result.timings.items()},
    }
    if preset == "balanced":
        details["cache"] = step_caches.describe(spec, Capability.TEXT)
    return details


def _cache_schedule(kit: Kit, runs: list[int], row: dict[str, Any]) -> tuple[list[bool], int]:
    """Which measured steps ran the whole denoiser, and how many of the 50-step job will:
    MagCache's schedule follows from its ratios alone; FirstBlockCache's is taken to keep the
    measured share."""
    from moviola.engine import Capability, get_model, step_caches

    computed = [n > 0 for n in runs]
    preset = step_caches.magcache_preset(get_model(kit.model), Capability.TEXT)
    if preset is None:
        share = sum(computed) / max(1, len(computed))
        return computed, round(gpu_report.JOB_STEPS * share)
    row["details"]["computed_expected"] = step_caches.computed_steps(preset, len(runs))
    return computed, step_caches.computed_steps(preset, gpu_report.JOB_STEPS)


def _figures(
    run: Run,
    row: dict[str, Any],
    step_times: list[float],
    computed: list[bool] | None,
    in_job: int | None,
) -> None:
    setup = run.doc["models"][row["model"]]
    env = run.doc["environment"] or {}
    gpu_report.figures(
        row,
        step_times=step_times,
        computed=computed,
        computed_in_job=in_job,
        flops_forward=setup["flops_per_forward"],
        peak_tflops=env.get("peak_bf16_tflops"),
        probe_tflops=(run.doc["probes"].get("matmul") or {}).get("tflops"),
    )


def _compile_counters(since: dict[str, int] | None = None) -> dict[str, int]:
    """Graphs compiled and graph breaks so far in this process (minus `since`)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return {}
    now = {
        "graphs": int(counters["stats"].get("unique_graphs", 0)),
        "graph_breaks": int(sum(counters["graph_break"].values())),
    }
    if since is None:
        return now
    return {k: v - since.get(k, 0) for k, v in now.items()}


def _goals(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The issue's goals for Wan 2.1 1.3B, against this run's rows and Moviola's planner."""
    by_name = {r["row"]: r for r in rows}
    quality, fast = by_name["quality"], by_name["fast"]

    def verdict(row: dict[str, Any], key: str, ok: Callable[[float], bool], unit: str) -> str:
        value = row.get(key)
        if row["status"] != "ok" or value is None:
            return f"not measured ({row['status']})"
        return f"{'met' if ok(value) else 'not met'} ({value:g}{unit})"

    goals = [
        {
            "goal": "quality ≤ 52 s",
            "verdict": verdict(quality, "est_50_step_s", lambda v: v <= 52, " s"),
        },
        {
            "goal": "quality ≥ 1.5× faster than bare diffusers",
            "verdict": verdict(quality, "speedup_vs_bare", lambda v: v >= 1.5, "×"),
        },
        {"goal": "fast ≤ 15 s", "verdict": verdict(fast, "est_job_s", lambda v: v <= 15, " s")},
    ]
    return goals + _planner_goals()


def _planner_goals() -> list[dict[str, str]]:
    """The memory goals, as the planner estimates them (not measured by this run)."""
    from moviola.engine import MemoryPreference, get_model, memory

    said = []
    for goal, model, (w, h, frames), gib, preference in (
        (
            "Wan 2.2 TI2V-5B 1280×704×121 fits 24 GB in auto",
            "wan2.2-ti2v-5b",
            (1280, 704, 121),
            24,
            MemoryPreference.AUTO,
        ),
        (
            "Wan 2.1 1.3B fits 8 GB in low",
            "wan2.1-t2v-1.3b",
            (832, 480, 81),
            8,
            MemoryPreference.LOW,
        ),
    ):
        try:
            plan = memory.plan_for(get_model(model), w, h, frames, [gib * memory.GIB], preference)
            verdict = f"planner: {plan.describe()} (an estimate, not measured here)"
        except Exception as err:
            verdict = f"planner: does not fit: {_first_line(err)}"
        said.append({"goal": goal, "verdict": verdict})
    return said


def _say(run: Run, entry: dict[str, Any]) -> None:
    elapsed = time.perf_counter() - run.started
    name = f"{entry.get('model', '')} {entry.get('row', 'setup')}".strip()
    figures = f", {entry['s_per_step']} s/step" if entry.get("s_per_step") else ""
    why = f": {entry['reason']}" if entry.get("reason") else ""
    print(f"[{elapsed:5.0f} s] {name}: {entry['status']}{figures}{why}", file=sys.stderr)


def _gb(n: float | None) -> float | None:
    return None if n is None else round(n / 1e9, 2)


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [""])[0][:500]


def _stamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


if __name__ == "__main__":
    main()
