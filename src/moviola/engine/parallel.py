"""One job across several devices: every denoiser forward split across the ranks of a group.

A group is N processes ("ranks"), one device each, joined in one `torch.distributed` group:
NCCL between GPUs (with gloo beside it for the small CPU-side messages), gloo between CPU
ranks. Every rank loads the same pipeline and runs the same `Engine.generate` with the same
request; diffusers' context parallel then gives each rank 1/N of the video's tokens in every
denoiser forward and trades pieces with the others inside attention:

- **Ulysses** (`ContextParallelConfig(ulysses_degree=N)`), wherever the model's attention
  heads divide among the ranks: an all-to-all before and after attention turns "my tokens,
  all heads" into "all tokens, my heads". One exchange per attention, and any attention
  kernel diffusers can split (`native`, i.e. SDPA, included).
- **ring** (`ring_degree=N`) where the heads do not divide (Wan 2.1 1.3B's 12 heads on 8
  GPUs): key/value blocks go round the ranks instead, so no head is split, but each rank's
  partial results are merged by their log-sum-exp, which only some kernels return (cuDNN,
  FlashAttention, Sage). No CPU kernel returns it, so the CPU runs Ulysses only.

A split model whose attention kernel cannot run its split (FlashAttention-3 from its own
package cannot be split at all in diffusers 0.42.1; `native` cannot run a ring) runs on cuDNN's
instead (`split_backend`, which whoever chooses kernels per job asks too).

Where the video's token count divides among the ranks (every Wan size on 2, 4 or 8 GPUs), each
rank takes an equal share. Where it does not, each forward is switched to diffusers' "anything"
mode, whose shares differ by a token, at the cost of a small exchange of sizes in every
attention; NCCL gathers such unequal pieces, gloo cannot, so a CPU group refuses such a count
before its first exchange.

Cancelling is collective: a rank that stopped alone would leave the others waiting in their
next exchange forever. `shared_cancel` makes each cancel check one broadcast of rank 0's
decision, so every rank stops at the same check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from moviola.engine.errors import UnsupportedInputError
from moviola.engine.progress import CancelToken

if TYPE_CHECKING:
    import torch.distributed as dist

log = logging.getLogger(__name__)

# The backends a group's ranks talk over: on GPUs NCCL carries the model's tensors and gloo the
# CPU ones (the cancel flag, and diffusers' per-attention exchange of piece sizes, which
# would otherwise cost a device-to-host copy and a wait each).
GPU_BACKENDS = "cpu:gloo,cuda:nccl"
CPU_BACKEND = "gloo"
# The backends diffusers 0.42.1 can split that return no log-sum-exp, so cannot run a ring.
_NO_LSE = frozenset({"native", "_native_npu"})
# Ships with PyTorch and runs either split on any recent NVIDIA GPU: the kernel a split model
# gets where the one chosen cannot run its split.
SPLIT_KERNEL = "_native_cudnn"
LAYOUT = "moviola_layout"  # the attribute a split denoiser carries its `Layout` in
# The denoisers Moviola splits: those it has seen make, split, the frames they make whole
# (tests/engine/test_parallel.py).
SPLITTABLE = frozenset({"WanTransformer3DModel"})
_UNSPLITTABLE = {
    # Each has a plan in diffusers 0.42.1 and fails in its first text cross-attention: its
    # attention processor widens the text mask to every head, and Ulysses leaves each rank
    # only its share of the heads.
    "LTXVideoTransformer3DModel": "its attention masks every head, and Ulysses splits the heads",
    "LTX2VideoTransformer3DModel": "its attention masks every head, and Ulysses splits the heads",
}


def why_unsplittable(cls: str, *, has_plan: bool = False) -> str | None:
    """Why a denoiser of class `cls` cannot run split across a group; None when it can."""
    if cls in SPLITTABLE:
        return None
    if cls in _UNSPLITTABLE:
        return _UNSPLITTABLE[cls]
    if has_plan:
        return "Moviola has not seen it split correctly yet"
    return "diffusers has no context-parallel plan for it"


@dataclass(frozen=True)
class Layout:
    """How a model's attention is split across `ranks`, and why."""

    kind: Literal["ulysses", "ring"]
    ranks: int
    reason: str


def layout_for(heads: Collection[int], ranks: int) -> Layout:
    """Ulysses where every attention's head count divides among `ranks`, ring elsewhere."""
    uneven = sorted({h for h in heads if h % ranks})
    if not uneven:
        counts = "/".join(str(h) for h in sorted(set(heads)))
        return Layout("ulysses", ranks, f"its {counts} attention heads divide among {ranks} ranks")
    return Layout(
        "ring", ranks, f"its {uneven[0]} attention heads do not divide among {ranks} ranks"
    )


def join_group(store: dist.Store, rank: int, ranks: int, device: str) -> None:
    """Join this process to the group as `rank` of `ranks`, working on `device` (`cuda:<i>` or
    `cpu`); every rank calls it, and it returns once all have."""
    import torch
    import torch.distributed as dist

    if device.startswith("cuda"):
        # Before the group exists, so that NCCL and the device mesh take this device and not
        # one they guess from the rank.
        torch.cuda.set_device(torch.device(device))
        dist.init_process_group(
            GPU_BACKENDS,
            store=store,
            rank=rank,
            world_size=ranks,
            device_id=torch.device(device),
        )
    else:
        dist.init_process_group(CPU_BACKEND, store=store, rank=rank, world_size=ranks)


def leave_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def enable_context_parallel(pipe: Any, ranks: int) -> None:
    """Split every denoiser of `pipe` (`transformer`, and Wan 2.2 A14B's `transformer_2`)
    across the `ranks` of this process's group; 1 leaves the pipeline as it is."""
    if ranks <= 1:
        return
    for name in ("transformer", "transformer_2"):
        model = getattr(pipe, name, None)
        if model is not None:
            _split(model, ranks)


def split_backend(layout: Layout | None, backend: str) -> str:
    """The attention backend a denoiser split by `layout` (its `LAYOUT` attribute; None: not
    split) runs when `backend` was chosen for it: `backend` itself where it can run that split,
    else `SPLIT_KERNEL`, said in the log. Ulysses needs a backend diffusers can split, ring
    one that also returns its log-sum-exp."""
    from diffusers.models.attention_dispatch import AttentionBackendName, _AttentionBackendRegistry

    if layout is None:
        return backend
    splits = _AttentionBackendRegistry._is_context_parallel_available(AttentionBackendName(backend))
    if splits and not (layout.kind == "ring" and backend in _NO_LSE):
        return backend
    log.info(
        "attention on %s, not %s: %s cannot run %s attention, which this model is split by (%s)",
        SPLIT_KERNEL,
        backend,
        backend,
        layout.kind,
        layout.reason,
    )
    return SPLIT_KERNEL


def least(value: int) -> int:
    """The smallest `value` among the group's ranks: what every rank plans its memory with, so
    that all place (and reload) their models alike — a rank that reloaded alone would make a
    group call alone and wait for the others forever."""
    import torch
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_world_size() == 1:
        return value
    shared = torch.tensor([value], dtype=torch.int64)
    dist.all_reduce(shared, op=dist.ReduceOp.MIN)
    return int(shared.item())


def shared_cancel(local: Callable[[], bool] | None = None) -> CancelToken:
    """The token every rank gives `Engine.generate`: each check is one broadcast of what rank
    0's `local` says (other ranks pass None), so all stop at the same check or none does.

    `local` must not raise: a rank 0 that failed before the broadcast would leave the others
    waiting in it."""
    import torch
    import torch.distributed as dist

    def decided() -> bool:
        flag = torch.tensor([1 if local is not None and local() else 0], dtype=torch.int32)
        dist.broadcast(flag, src=0)
        return bool(flag.item())

    return CancelToken(check=decided)


# --- internals -------------------------------------------------------------------------------


def _split(model: Any, ranks: int) -> None:
    import torch.distributed as dist
    from diffusers import ContextParallelConfig

    cls = type(model).__name__
    why = why_unsplittable(cls, has_plan=getattr(model, "_cp_plan", None) is not None)
    if why is not None:
        raise UnsupportedInputError(
            f"{cls} cannot be split across {ranks} ranks: {why}; run this model on workers "
            "of one GPU each",
            param="model",
        )
    layout = layout_for(_attention_heads(model), ranks)
    if not dist.is_initialized() or dist.get_world_size() != ranks:
        raise RuntimeError(
            f"splitting {cls} across {ranks} ranks needs this process in a group of {ranks} "
            "(moviola.engine.parallel.join_group) first"
        )
    on_gpus = "nccl" in str(dist.get_backend())
    if layout.kind == "ring" and not on_gpus:
        raise UnsupportedInputError(
            f"{cls} cannot be split across {ranks} CPU ranks: {layout.reason}, so it needs "
            "ring attention, which needs a kernel that returns its log-sum-exp (cuDNN, "
            "FlashAttention, Sage), and the CPU has none; use a number of ranks that divides "
            "its heads",
            param="model",
        )
    backend = _backend_of(model)
    wanted = split_backend(layout, backend or "native")
    if wanted != (backend or "native"):
        _set_backend(model, wanted)  # before the split, which checks it
    if layout.kind == "ring":
        config = ContextParallelConfig(ring_degree=ranks)
    else:
        config = ContextParallelConfig(ulysses_degree=ranks)
    with _device_count_on_cpu():
        model.enable_parallelism(config=config)
    hook = _shares_for_tokens(cls, config, model.config, unequal=on_gpus)
    model.register_forward_pre_hook(hook, with_kwargs=True)
    setattr(model, LAYOUT, layout)
    log.info("%s split across %d ranks by %s attention: %s", cls, ranks, layout.kind, layout.reason)


def _attention_modules(model: Any) -> Iterator[Any]:
    from diffusers.models.attention import AttentionModuleMixin
    from diffusers.models.attention_processor import Attention

    for module in model.modules():
        if isinstance(module, (Attention, AttentionModuleMixin)) and module.processor is not None:
            yield module


def _attention_heads(model: Any) -> set[int]:
    return {
        m.heads for m in _attention_modules(model) if isinstance(getattr(m, "heads", None), int)
    }


def _backend_of(model: Any) -> str | None:
    for module in _attention_modules(model):
        backend = getattr(module.processor, "_attention_backend", None)
        return None if backend is None else str(getattr(backend, "value", backend))
    return None


def _set_backend(model: Any, backend: str) -> None:
    """On this model's attention only: `set_attention_backend` would make it process-wide."""
    from diffusers.models.attention_dispatch import AttentionBackendName

    for module in _attention_modules(model):
        if hasattr(module.processor, "_attention_backend"):
            module.processor._attention_backend = AttentionBackendName(backend)


@contextmanager
def _device_count_on_cpu() -> Iterator[None]:
    """diffusers 0.42.1 records each rank's device as `rank % torch.accelerator.device_count()`
    (`ModelMixin._resolve_parallel_config`), a division by zero where there is no accelerator.
    Nothing reads that record again (the mesh and the hooks work on the group), so where there
    is none it is taken against one device for the length of the call."""
    import torch

    if torch.accelerator.device_count() > 0:
        yield
        return
    counted = torch.accelerator.device_count
    torch.accelerator.device_count = lambda: 1
    try:
        yield
    finally:
        torch.accelerator.device_count = counted


def _shares_for_tokens(
    cls: str, parallel: Any, config: Any, *, unequal: bool
) -> Callable[..., None]:
    """Before each forward: equal shares where the token count divides among the ranks, else
    diffusers' "anything" mode (`unequal`, NCCL) or, on gloo, which cannot gather unequal
    pieces, the same clear error on every rank before the first exchange. Every rank sees the
    same shapes, so every rank switches alike; `parallel` is the config that diffusers' hooks
    and attention processors all read."""
    ranks = parallel.ring_degree * parallel.ulysses_degree

    def fit(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        tokens = _token_count(hidden, config)
        uneven = tokens is not None and tokens % ranks != 0
        if uneven and not unequal:
            raise UnsupportedInputError(
                f"{cls} on {ranks} CPU ranks needs a token count they share evenly, and this "
                f"size and length make {tokens}; choose another size or length (GPU ranks "
                "take any)",
                param="size",
            )
        if parallel.ring_degree > 1:
            parallel.ring_anything = uneven
        else:
            parallel.ulysses_anything = uneven

    return fit


def _token_count(hidden: Any, config: Any) -> int | None:
    """Tokens of a denoiser input: (batch, tokens, channels) as it comes, or a latent video
    (batch, channels, frames, height, width) cut into `config.patch_size` patches."""
    shape = getattr(hidden, "shape", None)
    if shape is None:
        return None
    if len(shape) == 3:
        return int(shape[1])
    patch = getattr(config, "patch_size", None)
    if len(shape) == 5 and isinstance(patch, (tuple, list)) and len(patch) == 3:
        frames, height, width = shape[2:]
        return int((frames // patch[0]) * (height // patch[1]) * (width // patch[2]))
    return None
