"""The memory planner: estimates, the placement chosen per GPU size, and every placement run."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from moviola.engine import (
    Engine,
    GenerationRequest,
    InsufficientMemoryError,
    MemoryMode,
    MemoryPlan,
    MemoryPreference,
    Placement,
    catalogue,
    get_model,
    memory,
)
from moviola.engine.catalogue import Capability
from moviola.engine.loading import load_pipeline, pipeline_for
from moviola.engine.memory import GIB, LADDER, choose, footprint, peak, plan_for

DOCS = Path(__file__).parents[2] / "docs" / "memory.md"
PUBLISHED = Path(__file__).parent / "published"


def documented_choices() -> list[tuple[str, int, str]]:
    """(model id, GB, choice) for every cell of docs/memory.md's expectations table."""
    text = DOCS.read_text().split("## What the planner chooses", 1)[1]
    header = re.search(r"^\| model \| size × frames \|(.+)\|$", text, re.M)
    assert header, "docs/memory.md has no expectations table"
    sizes = [int(cell.strip().split()[0]) for cell in header[1].split("|")]
    cells = []
    for row in re.finditer(r"^\| `([^`]+)` \| [^|]+ \|(.+)\|$", text, re.M):
        for gb, choice in zip(sizes, row[2].split("|"), strict=True):
            cells.append((row[1], gb, choice.strip()))
    return cells


def describe(plan: MemoryPlan | None) -> str:
    if plan is None:
        return "—"
    name = plan.mode.value.replace("_offload", " offload")
    return name + (" + fp8" if plan.fp8 else "") + (", tiled" if plan.vae_tiling else "")


def test_the_documented_table_covers_every_catalogue_model_at_six_sizes():
    cells = documented_choices()
    models = {spec.id for spec in catalogue().values() if not spec.is_test_model}
    assert {model for model, _, _ in cells} == models
    assert sorted({gb for _, gb, _ in cells}) == [8, 12, 16, 24, 48, 80]


@pytest.mark.parametrize(("model", "gb", "expected"), documented_choices())
def test_the_planner_chooses_what_the_docs_say(model, gb, expected):
    spec = get_model(model)
    width, height = spec.native_sizes[0]
    fp = footprint(spec, width, height, spec.max_frames)
    assert describe(choose(fp, gb * GIB)) == expected


@pytest.mark.parametrize("model", [s.id for s in catalogue().values() if not s.is_test_model])
def test_each_placement_down_the_ladder_needs_no_more_than_the_one_before(model):
    spec = get_model(model)
    fp = footprint(spec, *spec.native_sizes[0], spec.max_frames)
    peaks = [peak(fp, mode, fp8=fp8, tiled=True) for mode, fp8 in LADDER]
    assert peaks == sorted(peaks, reverse=True)
    assert peak(fp, MemoryMode.RESIDENT, fp8=False, tiled=False) >= peaks[0]


def test_more_frames_and_pixels_need_more_memory_and_weights_are_exact_by_dtype():
    spec = get_model("wan2.1-t2v-1.3b")
    small, large = footprint(spec, 832, 480, 33), footprint(spec, 832, 480, 81)
    assert large.activations > small.activations and large.weights == small.weights
    assert footprint(spec, 1280, 720, 81).activations > large.activations
    # bf16 on a GPU; the Wan VAE stays float32; everything float32 on a CPU.
    assert large.denoiser == int(spec.transformer.published_params * 2)
    assert large.decoders == int(spec.component_params["vae"] * 4)
    on_cpu = footprint(spec, 832, 480, 81, accelerator=False)
    assert on_cpu.denoiser == 2 * large.denoiser and on_cpu.encoders == 2 * large.encoders


def test_speed_keeps_everything_resident_and_low_takes_the_leanest():
    spec = get_model("wan2.2-ti2v-5b")
    fp = footprint(spec, 1280, 704, 121)
    speed = choose(fp, 24 * GIB, MemoryPreference.SPEED)
    assert (speed.mode, speed.vae_tiling) == (MemoryMode.RESIDENT, False)
    low = choose(fp, 80 * GIB, MemoryPreference.LOW)
    assert (low.mode, low.vae_tiling) == (MemoryMode.GROUP_OFFLOAD, True)
    assert choose(fp, 80 * GIB).mode is MemoryMode.RESIDENT


def test_a_cpu_keeps_everything_where_it_is():
    fp = footprint(get_model("wan2.1-t2v-1.3b"), 832, 480, 81, accelerator=False)
    plan = choose(fp, 80 * GIB, MemoryPreference.LOW, accelerator=False)
    assert plan.mode is MemoryMode.RESIDENT and not plan.batch_cfg
    assert choose(fp, 24 * GIB, accelerator=False) is None  # 1.3B + UMT5-XXL in fp32


def test_a_request_that_fits_nowhere_says_what_it_needs_and_what_to_change():
    spec = get_model("wan2.1-t2v-14b")
    with pytest.raises(InsufficientMemoryError) as err:
        plan_for(spec, 1280, 720, 81, [6 * GIB, 4 * GIB])
    assert err.value.code == "insufficient_memory"
    assert err.value.param == "size"  # at 480p it would fit
    assert re.search(r"needs ≈\d+\.\d GB .* the largest device has 6\.0 GB", err.value.message)
    with pytest.raises(InsufficientMemoryError) as err:
        plan_for(spec, 1280, 720, 81, [2 * GIB])
    assert err.value.param == "model"  # nothing of it fits 2 GB


def test_the_plan_takes_the_roomiest_device():
    spec = get_model("wan2.1-t2v-1.3b")
    plan = plan_for(spec, 832, 480, 81, [8 * GIB, 80 * GIB, 24 * GIB])
    assert (plan.mode, plan.device_bytes) == (MemoryMode.RESIDENT, 80 * GIB)
    assert plan.batch_cfg  # room for both halves of guidance in one forward


# --- placements, run for real on the tiny model (each is a no-op for speed on a CPU, but it
# runs the same diffusers and accelerate hooks as on a GPU) --------------------------------


def tiny_call(pipe) -> np.ndarray:
    out = pipe(
        prompt="a red kite",
        negative_prompt="blur",
        height=96,
        width=160,
        num_frames=5,
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(3),
        output_type="np",
    )
    return out.frames[0]


def tiny_image_call(pipe) -> np.ndarray:
    """The same, from a first frame, through the image pipeline that shares `pipe`'s parts."""
    from PIL import Image

    view = pipeline_for(pipe, get_model("tiny"), Capability.IMAGE)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 160, 3), np.uint8))
    out = view(
        prompt="a red kite",
        image=image,
        height=96,
        width=160,
        num_frames=5,
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(3),
        output_type="np",
    )
    return out.frames[0]


@pytest.fixture(scope="module")
def resident_frames():
    plan = MemoryPlan(MemoryMode.RESIDENT, False, 0, 0)
    pipe = load_pipeline(get_model("tiny"), None, Placement("cpu"), plan)
    return tiny_call(pipe), tiny_image_call(pipe)


@pytest.mark.parametrize("mode", [m for m in MemoryMode if m is not MemoryMode.RESIDENT])
def test_every_placement_renders_exactly_what_a_resident_model_does(mode, resident_frames):
    from_text, from_image = resident_frames
    pipe = load_pipeline(get_model("tiny"), None, Placement("cpu"), MemoryPlan(mode, False, 0, 0))
    assert np.array_equal(tiny_call(pipe), from_text)
    assert np.array_equal(tiny_call(pipe), from_text)  # and again: hooks reset per call
    assert np.array_equal(tiny_image_call(pipe), from_image)  # a view shares the placement


def test_fp8_stores_the_denoiser_in_half_the_bytes_and_stays_close(resident_frames):
    plan = MemoryPlan(MemoryMode.MODEL_OFFLOAD, False, 0, 0, fp8=True)
    pipe = load_pipeline(get_model("tiny"), None, Placement("cpu"), plan)
    linears = [m for m in pipe.transformer.blocks.modules() if isinstance(m, torch.nn.Linear)]
    assert {m.weight.dtype for m in linears} == {torch.float8_e4m3fn}  # norms stay as they were
    frames = tiny_call(pipe)
    difference = np.abs(frames.astype(float) - resident_frames[0].astype(float)).mean()
    assert 0 < difference < 0.05  # frames in 0..1: FP8's rounding, not another video


def test_an_untiled_decode_out_of_memory_is_done_again_tiled(monkeypatch):
    engine = Engine(placement=Placement("cpu"))
    request = dict(prompt="a lighthouse", model="tiny", frames=5, seed=2)
    before = engine.generate(GenerationRequest(**request))
    assert not before.vae_retried_tiled and before.memory.mode is MemoryMode.RESIDENT
    (pipe,) = engine.pipelines._views.values()
    vae, untiled = pipe.vae, pipe.vae._decode
    calls = []

    def short_of_memory(*args, **kwargs):
        calls.append(vae.use_tiling)
        if not vae.use_tiling:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")
        return untiled(*args, **kwargs)

    monkeypatch.setattr(vae, "_decode", short_of_memory)
    retried = engine.generate(GenerationRequest(**request))
    assert calls == [False, True] and retried.vae_retried_tiled
    assert np.array_equal(retried.frames, before.frames)  # the denoising was kept, not redone
    calls.clear()
    monkeypatch.setattr(vae, "_decode", untiled)
    again = engine.generate(GenerationRequest(**request))
    assert not again.vae_retried_tiled and not vae.use_tiling  # back to the plan's choice


def test_vae_tiling_can_be_forced_on_any_device():
    engine = Engine(placement=Placement(device="cpu", vae_tiling=True))
    result = engine.generate(GenerationRequest("a fox", model="tiny", frames=5, seed=1))
    assert result.memory.vae_tiling
    (pipe,) = engine.pipelines._views.values()
    assert pipe.vae.use_tiling


def test_a_model_too_big_for_the_machine_is_refused_before_it_loads(tmp_path):
    # A config-only folder of Wan 2.2 A14B: its sizes come from its own configs on the meta
    # device, so the refusal needs no weights (and loading them would fail).
    shutil.copytree(PUBLISHED / "wan2.2-t2v-a14b", tmp_path / "wan2.2-t2v-a14b")
    engine = Engine(models_dir=tmp_path, placement=Placement("cpu"))
    request = GenerationRequest("a harbour", model="wan2.2-t2v-a14b", frames=5, size=(832, 480))
    with pytest.raises(InsufficientMemoryError, match=r"this machine has \d+\.\d GB"):
        engine.generate(request)
    assert engine.pipelines.loaded() == []


def test_a_folders_own_configs_size_it(tmp_path):
    denoiser, parts = memory.folder_params(PUBLISHED / "wan2.1-t2v-1.3b")
    spec = get_model("wan2.1-t2v-1.3b")
    assert abs(denoiser / spec.transformer.published_params - 1) < 0.01
    assert set(parts) == {"text_encoder", "vae"}
    for name, count in parts.items():  # tied embeddings counted once, as loading leaves them
        assert abs(count / spec.component_params[name] - 1) < 0.01, name


def test_every_stage_records_its_time_and_its_peak_memory(engine):
    result = engine.generate(GenerationRequest("a tram", model="tiny", frames=9, seed=4))
    stages = {"loading", "encoding_prompt", "denoising", "decoding"}
    assert stages <= set(result.timings) and stages <= set(result.peak_memory)
    assert all(peak > 0 for peak in result.peak_memory.values())
    assert result.memory.mode is MemoryMode.RESIDENT


def test_a_stages_peak_is_its_own_not_the_processes():
    from moviola.engine.meter import DeviceMeter

    meter = DeviceMeter("cpu")
    quiet = meter.lap()
    big = bytearray(256 * 1024**2)
    big[::4096] = b"x" * len(big[::4096])  # touched, so resident
    del big  # gone before the stage ends: only its peak tells
    busy = meter.lap()
    calm = meter.lap()
    assert busy - quiet > 200 * 1024**2 and busy - calm > 200 * 1024**2
