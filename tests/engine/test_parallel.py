"""Context parallel: one job's denoiser forwards split across the ranks of a group.

Two CPU processes joined over gloo stand in for two GPUs over NCCL: the same diffusers code
splits the tokens and trades them in attention (`native`, i.e. SDPA, does Ulysses on any
device). Each test reads what the two ranks of one shared run did.
"""

import json
import socket
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from moviola.engine import GenerationRequest, UnsupportedInputError, get_model
from moviola.engine.parallel import enable_context_parallel, layout_for, split_backend
from moviola.engine.tiny import build_tiny_pipeline

RANKS = 2
SEED = 5

# What each rank runs, in the same order on both: every rank makes the same calls, as the
# ranks of a worker do. Rank 0 alone decides the cancel; the others follow its decision.
RANK_SCRIPT = """
import json, sys
import numpy as np
import torch
import torch.distributed as dist
from moviola.engine import (
    CancelToken, Engine, GenerationRequest, Placement, Stage, UnsupportedInputError,
)
from moviola.engine.parallel import enable_context_parallel, join_group, shared_cancel

rank, ranks, port, seed = (int(a) for a in sys.argv[1:5])
out = sys.argv[5]
torch.set_num_threads(1)
join_group(dist.TCPStore("127.0.0.1", port, ranks, is_master=rank == 0), rank, ranks, "cpu")
engine = Engine(placement=Placement("cpu", context_parallel=ranks))
seen = {"tokens": set(), "forwards": 0}

def after_block(module, args, output):  # a block's output: this rank's share of the tokens
    if type(module).__name__ == "WanTransformerBlock":
        seen["tokens"].add(int(output.shape[1]))
    if type(module).__name__ == "WanTransformer3DModel":
        seen["forwards"] += 1

torch.nn.modules.module.register_module_forward_hook(after_block)
report = {}

def job(name, **kwargs):
    seen["tokens"].clear()
    seen["forwards"] = 0
    request = GenerationRequest("a heron", seed=seed, **kwargs)
    local = CancelToken()
    def on_progress(progress):
        if kwargs.get("steps") == 4 and progress.stage is Stage.DENOISING and progress.step >= 1:
            local.cancel()  # rank 0's worker was told to stop, after step 1 of 4
    try:
        cancel = shared_cancel(lambda: local.cancelled) if rank == 0 else shared_cancel()
        result = engine.generate(request, on_progress=on_progress, cancel=cancel)
        np.save(f"{out}/{name}-{rank}.npy", result.frames)
        outcome = "completed"
    except Exception as err:
        outcome = f"{type(err).__name__}: {err}"
    report[name] = {
        "outcome": outcome, "tokens": sorted(seen["tokens"]), "forwards": seen["forwards"],
    }

job("first", model="tiny", size=(128, 128), seconds=1)
job("cancelled", model="tiny", size=(128, 128), seconds=1, steps=4)
job("uneven", model="tiny", size=(160, 96), seconds=1)
job("after", model="tiny", size=(128, 128), seconds=1)

from diffusers import WanTransformer3DModel
three_heads = WanTransformer3DModel(
    patch_size=(1, 2, 2), num_attention_heads=3, attention_head_dim=12, in_channels=4,
    out_channels=4, text_dim=8, freq_dim=16, ffn_dim=8, num_layers=1,
)
try:
    enable_context_parallel(type("Pipe", (), {"transformer": three_heads})(), ranks)
    report["three_heads"] = "split"
except UnsupportedInputError as err:
    report["three_heads"] = err.message
with open(f"{out}/report-{rank}.json", "w") as f:
    json.dump(report, f)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Run RANK_SCRIPT on two CPU ranks; each rank's report, and where its frames are."""
    out = tmp_path_factory.mktemp("ranks")
    port = free_port()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RANK_SCRIPT, *map(str, (r, RANKS, port, SEED, out))]
        )
        for r in range(RANKS)
    ]
    try:
        codes = [p.wait(timeout=400) for p in processes]
    finally:
        for p in processes:
            p.kill()
    assert codes == [0] * RANKS
    reports = [json.loads((out / f"report-{r}.json").read_text()) for r in range(RANKS)]
    return SimpleNamespace(out=out, reports=reports)


def frames(ranks, job, rank):
    return np.load(ranks.out / f"{job}-{rank}.npy")


def one_rank(engine, **kwargs):
    return engine.generate(GenerationRequest("a heron", seed=SEED, **kwargs)).frames


pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_two_ranks_make_the_frames_one_rank_makes(ranks, engine):
    alone = one_rank(engine, model="tiny", size=(128, 128), seconds=1)
    for rank in range(RANKS):
        split = frames(ranks, "first", rank)
        assert split.shape == alone.shape
        # Attention summed in another order moves a few values by a rounding step (4 of the
        # 786,432 here): close, not identical.
        assert np.abs(split.astype(int) - alone.astype(int)).max() <= 1
        assert np.mean(split != alone) < 1e-3
    assert np.array_equal(frames(ranks, "first", 0), frames(ranks, "first", 1))


def test_each_rank_works_on_half_of_the_tokens(ranks):
    # 128×128 at 1 s: 5 latent frames of 4×4 patches, 80 tokens; each block sees 40 of them.
    for report in ranks.reports:
        assert report["first"]["outcome"] == "completed"
        assert report["first"]["tokens"] == [40]


def test_a_cancel_on_rank_0_stops_every_rank_at_the_same_step(ranks):
    for report in ranks.reports:
        cancelled = report["cancelled"]
        assert cancelled["outcome"].startswith("GenerationCancelled")
        # Step 1 of 4, with classifier-free guidance: two denoiser calls, on each rank.
        assert cancelled["forwards"] == 2


def test_after_a_cancel_the_group_renders_the_next_job_as_before(ranks):
    for rank in range(RANKS):
        assert ranks.reports[rank]["after"]["outcome"] == "completed"
        assert np.array_equal(frames(ranks, "after", rank), frames(ranks, "first", rank))


def test_cpu_ranks_refuse_a_token_count_they_cannot_share_evenly(ranks):
    # 160×96 makes 5×3 patches a frame, 75 tokens: gloo cannot gather pieces of 38 and 37.
    for report in ranks.reports:
        outcome = report["uneven"]["outcome"]
        assert outcome.startswith("UnsupportedInputError") and "75" in outcome
        assert report["uneven"]["forwards"] == 0  # refused before the first exchange


def test_heads_that_do_not_divide_need_ring_attention_which_the_cpu_cannot_run(ranks):
    for report in ranks.reports:
        assert "ring attention" in report["three_heads"]
        assert "log-sum-exp" in report["three_heads"]


def test_ulysses_where_the_heads_divide_and_ring_where_they_do_not():
    assert layout_for({12}, 4).kind == "ulysses"  # Wan 2.1 1.3B on 4 GPUs
    assert layout_for({40}, 8).kind == "ulysses"  # Wan 14B on 8
    ring = layout_for({12}, 8)  # Wan 2.1 1.3B on 8: 12 heads do not divide
    assert ring.kind == "ring" and "12 attention heads do not divide among 8" in ring.reason
    assert layout_for({32, 12}, 4).kind == "ulysses"
    assert layout_for({32, 12}, 8).kind == "ring"  # every attention of the model must divide


@pytest.mark.parametrize("model", ["tiny-ltx", "tiny-ltx2"])
def test_ltx_denoisers_are_refused_with_the_reason(model):
    # diffusers 0.42.1 has a plan for them, but their text mask covers every head, and under
    # Ulysses each rank has only its share: the first cross-attention fails.
    pipe = build_tiny_pipeline(get_model(model))
    with pytest.raises(UnsupportedInputError, match="masks every head"):
        enable_context_parallel(pipe, RANKS)


def test_a_kernel_that_cannot_run_the_split_gives_way_to_cudnn():
    ulysses, ring = layout_for({12}, 4), layout_for({12}, 8)
    assert split_backend(ulysses, "native") == "native"
    assert split_backend(ring, "native") == "_native_cudnn"  # SDPA returns no log-sum-exp
    assert split_backend(ulysses, "_flash_3") == "_native_cudnn"  # diffusers cannot split it
    assert split_backend(ring, "sage") == "sage"
    assert split_backend(None, "_flash_3") == "_flash_3"  # a model that is not split


def test_a_denoiser_diffusers_cannot_split_is_refused_by_name():
    from diffusers import CogVideoXTransformer3DModel

    cogvideox = CogVideoXTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=4,
        out_channels=4,
        text_embed_dim=16,
        num_layers=1,
        sample_width=8,
        sample_height=8,
        sample_frames=8,
        max_text_seq_length=8,
    )
    with pytest.raises(
        UnsupportedInputError,
        match=r"CogVideoXTransformer3DModel cannot be split.*no context-parallel plan",
    ):
        enable_context_parallel(SimpleNamespace(transformer=cogvideox), RANKS)
