"""Speed presets on the tiny models: what each one computes, and that none leaves a trace.

Work is counted as it happens: every call of a transformer's feed-forward layer (one per block a
step computes) and of the transformer itself, through a process-wide forward hook.
"""

from collections import Counter
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from moviola.engine import (
    CancelToken,
    Engine,
    GenerationCancelled,
    GenerationRequest,
    WeightsNotFoundError,
    get_model,
    plan,
)
from moviola.engine.distilled import check_lora, find_files, route_for
from moviola.engine.speed import Speed, SpeedSettings
from moviola.engine.step_caches import MAGCACHE, computed_steps
from moviola.engine.tiny import TINY_DISTILLED_LORA, save_tiny_distilled_lora
from moviola.errors import InvalidRequestError

TINY_BLOCKS = 2  # the tiny transformers' depth


@contextmanager
def counting():
    """Forward calls by module class while the block runs."""
    calls: Counter[str] = Counter()

    def hook(module, args, output):
        calls[type(module).__name__] += 1

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()


def request(model="tiny", **kwargs):
    kwargs.setdefault("seed", 5)
    kwargs.setdefault("frames", 9)
    return GenerationRequest("a lighthouse in a storm", model=model, **kwargs)


def frames(engine, **kwargs):
    return engine.generate(request(**kwargs)).frames


# --- balanced: step caches ----------------------------------------------------------------------


def test_magcache_with_the_wan_ratios_computes_at_most_half_of_50_steps(engine):
    frames(engine, steps=50)  # loaded before counting
    with counting() as quality:
        frames(engine, steps=50)
    with counting() as balanced:
        frames(engine, steps=50, speed="balanced")
    # With CFG each step is two transformer calls (cond and uncond), each TINY_BLOCKS blocks.
    per_branch = balanced["FeedForward"] // (2 * TINY_BLOCKS)
    assert quality["FeedForward"] // (2 * TINY_BLOCKS) == 50
    assert per_branch <= 25
    # The schedule depends on the ratios alone: it is known before the job runs.
    assert per_branch == computed_steps(MAGCACHE["tiny"][None], 50)


def test_first_block_cache_serves_a_model_without_published_ratios(engine):
    with counting() as quality:
        frames(engine, model="tiny-ltx", steps=10)
    with counting() as balanced:
        frames(engine, model="tiny-ltx", steps=10, speed="balanced")
    assert 0 < balanced["FeedForward"] < quality["FeedForward"]


@pytest.mark.parametrize("model", ["tiny", "tiny-ltx"])
def test_a_cache_leaves_no_state_behind(engine, model):
    plain = frames(engine, model=model, steps=10)
    cached = frames(engine, model=model, steps=10, speed="balanced")
    assert not np.array_equal(plain, cached)  # it skipped something
    assert np.array_equal(frames(engine, model=model, steps=10, speed="balanced"), cached)
    assert np.array_equal(frames(engine, model=model, steps=10), plain)


def test_a_quality_job_after_balanced_and_fast_matches_a_fresh_engine(engine):
    frames(engine, steps=10, speed="balanced")
    frames(engine, speed="fast")
    assert np.array_equal(frames(engine, steps=10), frames(Engine(), steps=10))


def test_balanced_is_refused_for_a_model_no_cache_supports():
    with pytest.raises(InvalidRequestError) as refused:
        plan(request("tiny-ltx2", speed="balanced"))
    assert refused.value.param == "speed"
    assert "no step cache" in refused.value.message


# --- fast: step-distilled LoRAs -----------------------------------------------------------------


def test_fast_runs_the_distilled_steps_with_cfg_off(engine):
    route = route_for(get_model("tiny"))
    quality = engine.generate(request())
    assert quality.guidance > 1  # the quality job runs CFG: two calls a step
    with counting() as calls:
        fast = engine.generate(request(speed="fast"))
    assert (fast.steps, fast.guidance) == (route.steps, 1.0)
    assert calls["WanTransformer3DModel"] == route.steps  # one call a step, not two
    assert not np.array_equal(fast.frames, quality.frames)


def test_fast_keeps_the_warm_pipeline_and_a_quality_job_after_it_is_unchanged(engine):
    seen = []

    def transformer_of(module, args):
        if type(module).__name__ == "WanTransformer3DModel":
            seen.append(module)

    before = frames(engine)
    handle = torch.nn.modules.module.register_module_forward_pre_hook(transformer_of)
    try:
        frames(engine)
        frames(engine, speed="fast")
        frames(engine)
    finally:
        handle.remove()
    assert len({id(m) for m in seen}) == 1  # one transformer: nothing was loaded again
    assert np.array_equal(frames(engine), before)


def test_a_cancelled_fast_job_leaves_its_lora_off(engine):
    before = frames(engine)
    calls = {"n": 0}

    def stop_at_the_second_step() -> bool:
        calls["n"] += 1
        return calls["n"] > 6

    with pytest.raises(GenerationCancelled):
        engine.generate(request(speed="fast"), cancel=CancelToken(check=stop_at_the_second_step))
    assert np.array_equal(frames(engine), before)


def test_a_cancelled_cached_job_leaves_no_cache_state(engine):
    cached = frames(engine, steps=12, speed="balanced")
    calls = {"n": 0}

    def stop_midway() -> bool:
        calls["n"] += 1
        return calls["n"] > 12

    with pytest.raises(GenerationCancelled):
        engine.generate(request(steps=12, speed="balanced"), cancel=CancelToken(check=stop_midway))
    assert np.array_equal(frames(engine, steps=12, speed="balanced"), cached)


def test_fast_takes_steps_and_guidance_from_the_route_unless_given():
    route = route_for(get_model("tiny"))
    fast = plan(request(speed="fast"))
    assert (fast.speed, fast.steps, fast.guidance) == (Speed.FAST, route.steps, route.guidance)
    given = plan(request(speed="fast", steps=6, guidance=2.0))
    assert (given.steps, given.guidance) == (6, 2.0)
    assert plan(request()).steps == get_model("tiny").default_steps


@pytest.mark.parametrize(
    ("model", "why"),
    [("ltx-video", "step-distilled already"), ("cogvideox-5b", "no step-distilled LoRA")],
)
def test_fast_is_refused_for_a_model_with_no_distilled_route(model, why):
    with pytest.raises(InvalidRequestError) as refused:
        plan(request(model, speed="fast", frames=None))
    assert refused.value.param == "speed"
    assert why in refused.value.message


def test_an_unknown_speed_is_refused_by_name():
    with pytest.raises(InvalidRequestError) as refused:
        plan(request(speed="turbo"))
    assert refused.value.param == "speed"
    assert "quality, balanced, fast" in refused.value.message


def test_a_missing_lora_is_refused_with_the_command_that_fetches_it(tmp_path):
    spec = get_model("wan2.1-t2v-1.3b")  # the test cache holds no LoRA
    with pytest.raises(WeightsNotFoundError) as missing:
        find_files(spec, route_for(spec), tmp_path)
    assert missing.value.param == "speed"
    assert "moviola models pull wan2.1-t2v-1.3b --fast" in missing.value.message
    with pytest.raises(WeightsNotFoundError):
        check_lora(plan(request("wan2.1-t2v-1.3b", speed="fast", frames=None)), tmp_path)
    check_lora(plan(request("wan2.1-t2v-1.3b", frames=None)), tmp_path)  # quality needs none


def test_the_saved_tiny_lora_is_a_diffusers_lora_file_that_gives_the_same_video(engine, tmp_path):
    saved = save_tiny_distilled_lora(tmp_path / "loras" / "tiny")
    assert saved.name == TINY_DISTILLED_LORA
    from_file = Engine(models_dir=tmp_path)
    [(_, path)] = find_files(get_model("tiny"), route_for(get_model("tiny")), tmp_path)
    assert path == saved  # the engine loads the file, not the built-in copy
    assert np.array_equal(frames(from_file, speed="fast"), frames(engine, speed="fast"))


# --- CFG in one batch -------------------------------------------------------------------------


def test_batched_cfg_gives_the_same_frames_with_half_the_block_calls(engine):
    batched = Engine(speed=SpeedSettings(batch_cfg=True))
    frames(engine)
    frames(batched)
    with counting() as one_by_one:
        sequential = frames(engine)
    with counting() as in_pairs:
        paired = frames(batched)
    assert in_pairs["FeedForward"] * 2 == one_by_one["FeedForward"]
    assert np.abs(paired.astype(int) - sequential.astype(int)).max() <= 2  # float rounding


def test_batched_cfg_is_off_while_a_cache_keeps_per_branch_state(engine):
    batched = Engine(speed=SpeedSettings(batch_cfg=True))
    with counting() as sequential:
        expected = frames(engine, steps=12, speed="balanced")
    with counting() as calls:
        got = frames(batched, steps=12, speed="balanced")
    assert calls["FeedForward"] == sequential["FeedForward"]
    assert np.array_equal(got, expected)


# --- two experts (Wan 2.2 A14B's shape) ---------------------------------------------------------


def two_experts():
    """The tiny pipeline with a second, low-noise expert below a boundary, as Wan 2.2 A14B."""
    import copy

    from moviola.engine.tiny import TINY, build_tiny_pipeline

    pipe = build_tiny_pipeline(TINY)
    pipe.register_modules(transformer_2=copy.deepcopy(pipe.transformer))
    pipe.register_to_config(boundary_ratio=0.875)
    return pipe


def run_at(pipe, speed, settings=None, steps=8):
    from moviola.engine.calls import Call
    from moviola.engine.catalogue import Capability
    from moviola.engine.speed import applied

    generator = torch.Generator().manual_seed(0)
    call = Call(Capability.TEXT, "a kite", None, 160, 96, 5, 16, steps, 3.0, generator)
    with applied(
        pipe,
        get_model("tiny"),
        call,
        speed,
        settings=settings or SpeedSettings(),
        device="cpu",
        backend="native",
        models_dir=None,
        defaults={},
    ):
        return pipe(
            "a kite",
            num_frames=5,
            height=96,
            width=160,
            num_inference_steps=steps,
            guidance_scale=3.0,
            guidance_scale_2=2.0,
            generator=generator,
            output_type="np",
        ).frames[0]


def test_each_expert_gets_its_own_cache_over_its_own_steps():
    from moviola.engine.step_caches import _expert_windows

    pipe = two_experts()
    experts = [pipe.transformer, pipe.transformer_2]
    (first, switch), (second, end) = _expert_windows(pipe, experts, 40, 0)
    assert first == 0 < switch == second < end == 40  # split at the boundary timestep
    calls = Counter()
    handles = [
        expert.blocks[0].ffn.register_forward_hook(lambda *_, i=i: calls.update([i]))
        for i, expert in enumerate(experts)
    ]
    try:
        run_at(pipe, Speed.QUALITY, steps=40)
        quality, calls = calls.copy(), Counter()
        cached = run_at(pipe, Speed.BALANCED, steps=40)
    finally:
        for handle in handles:
            handle.remove()
    assert 0 < calls[0] <= quality[0] and 0 < calls[1] < quality[1]
    assert np.array_equal(run_at(pipe, Speed.BALANCED, steps=40), cached)  # no state kept
    assert not any(expert.is_cache_enabled for expert in experts)


def test_a_route_with_a_file_per_expert_loads_each_and_leaves_both_off():
    from moviola.engine.distilled import LoraFile, Route
    from moviola.engine.distilled_run import adapter_holders, route_applied

    pipe = two_experts()
    route = Route(
        name="two-expert test LoRA",
        files=(
            LoraFile(None, TINY_DISTILLED_LORA),
            LoraFile(None, TINY_DISTILLED_LORA, into="transformer_2"),
        ),
        steps=4,
        guidance=1.0,
        sampler="euler",
        shift=5.0,
    )
    before = run_at(pipe, Speed.QUALITY)
    with route_applied(pipe, get_model("tiny"), route, None, torch.Generator()):
        assert adapter_holders(pipe, route.adapter) == [pipe.transformer, pipe.transformer_2]
    assert np.array_equal(run_at(pipe, Speed.QUALITY), before)


def test_batched_cfg_serves_both_experts():
    pipe = two_experts()
    sequential = run_at(pipe, Speed.QUALITY)
    batched = run_at(pipe, Speed.QUALITY, SpeedSettings(batch_cfg=True))
    assert np.abs(batched - sequential).max() < 1e-4
