"""Classifier-free guidance as one batch-2 denoiser call per step, for pipelines that make two.

Wan's pipelines call the transformer twice a step, conditional then unconditional, at batch 1.
One call at batch 2 does the same work with better GPU occupancy and half the per-call overhead,
where memory allows the doubled activations (the caller decides). While a job runs, the
conditional call computes both halves and keeps the unconditional one; the unconditional call
that follows, on the same latents, returns it without computing. Step caches keep state per
conditional and unconditional call, so this is off whenever one is on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

# Pipelines whose CFG is two calls a step (the others batch it themselves or have no CFG).
TWO_CALL_PIPELINES = frozenset(
    {"WanPipeline", "WanImageToVideoPipeline", "WanVideoToVideoPipeline"}
)


def applies_to(pipe: Any) -> bool:
    return type(pipe).__name__ in TWO_CALL_PIPELINES


@contextmanager
def batched(pipe: Any, denoisers: Sequence[Any]) -> Iterator[None]:
    """Inside the block, each step's two CFG calls of `pipe` are one batch-2 call."""
    state: dict[str, Any] = {}
    encode = pipe.encode_prompt

    def encode_prompt(*args: Any, **kwargs: Any) -> Any:
        embeds = encode(*args, **kwargs)
        state["negative"] = embeds[1]
        return embeds

    saved = [(d, d.__dict__.get("forward")) for d in denoisers]
    pipe.encode_prompt = encode_prompt
    for denoiser in denoisers:
        denoiser.forward = _batched_forward(denoiser.forward, state)
    try:
        yield
    finally:
        pipe.__dict__.pop("encode_prompt", None)
        for denoiser, forward in saved:
            # An offloading hook may have wrapped `forward` on the instance: put back whatever
            # was there.
            if forward is None:
                denoiser.__dict__.pop("forward", None)
            else:
                denoiser.forward = forward


def _batched_forward(forward: Any, state: dict[str, Any]) -> Any:
    def batched_forward(*args: Any, **kwargs: Any) -> Any:
        hidden = kwargs.get("hidden_states")
        text = kwargs.get("encoder_hidden_states")
        kept = state.pop("uncond", None)
        if kept is not None and hidden is kept[0] and text is not kept[1]:
            return _output(kept[2], kwargs.get("return_dict", True))
        negative = state.get("negative")
        if args or hidden is None or text is None or negative is None:
            return forward(*args, **kwargs)
        negative = negative.to(device=text.device, dtype=text.dtype)
        if negative.shape != text.shape or negative is text:
            return forward(*args, **kwargs)
        import torch

        pair = dict(kwargs)
        pair["hidden_states"] = torch.cat([hidden, hidden])
        pair["timestep"] = torch.cat([kwargs["timestep"], kwargs["timestep"]])
        pair["encoder_hidden_states"] = torch.cat([text, negative])
        image = kwargs.get("encoder_hidden_states_image")
        if image is not None:
            pair["encoder_hidden_states_image"] = torch.cat([image, image])
        pair["return_dict"] = False
        cond, uncond = forward(**pair)[0].chunk(2)
        state["uncond"] = (hidden, text, uncond)
        return _output(cond, kwargs.get("return_dict", True))

    return batched_forward


def _output(sample: Any, return_dict: bool) -> Any:
    if not return_dict:
        return (sample,)
    from diffusers.models.modeling_outputs import Transformer2DModelOutput

    return Transformer2DModelOutput(sample=sample)
