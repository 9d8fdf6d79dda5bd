"""Regional compilation on the CPU: the same video compiled as eager, in the form each job's
hooks allow. Compiling takes 10–30 s on a CPU, so these are few."""

import numpy as np
import pytest
import torch

from moviola.engine import Engine, GenerationRequest
from moviola.engine.regional_compile import compiled_modules, ensure, form_of
from moviola.engine.speed import SpeedSettings
from moviola.engine.tiny import TINY, build_tiny_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def request(**kwargs):
    return GenerationRequest("a lighthouse in a storm", model="tiny", frames=9, seed=4, **kwargs)


def test_switching_forms_undoes_the_other():
    transformer = build_tiny_pipeline(TINY).transformer
    ensure([transformer], "blocks")
    assert compiled_modules(transformer) == ["blocks.0", "blocks.1"]
    ensure([transformer], "parts")
    assert form_of(transformer) == "parts"
    assert compiled_modules(transformer) == [
        f"blocks.{i}.{part}" for i in range(2) for part in ("attn1", "attn2", "ffn")
    ]
    ensure([transformer], None)
    assert compiled_modules(transformer) == []


def test_compiled_jobs_match_eager_ones_with_and_without_a_cache(engine):
    compiled = Engine(speed=SpeedSettings(compile="true"))
    forms = []
    for job in (request(), request(steps=10, speed="balanced"), request()):
        seen: set[tuple[str, ...]] = set()

        def transformer_of(module, args, seen=seen):
            if type(module).__name__ == "WanTransformer3DModel":
                seen.add(tuple(compiled_modules(module)))

        eager = engine.generate(job).frames
        handle = torch.nn.modules.module.register_module_forward_pre_hook(transformer_of)
        try:
            got = compiled.generate(job).frames
        finally:
            handle.remove()
        assert np.abs(got.astype(int) - eager.astype(int)).max() <= 2
        [form] = seen
        forms.append(form)
    blocks = ("blocks.0", "blocks.1")
    parts = tuple(f"blocks.{i}.{p}" for i in range(2) for p in ("attn1", "attn2", "ffn"))
    # Whole blocks, fullgraph, without a cache; their parts while the cache hooks the blocks;
    # whole blocks again after.
    assert forms == [blocks, parts, blocks]


def test_a_cpu_engine_compiles_only_when_told_to():
    assert not Engine().compiles()
    assert Engine(speed=SpeedSettings(compile="true")).compiles()
