"""Regional compilation of the denoisers' repeated blocks, in the form the job's hooks allow.

`torch.compile` on the repeated transformer blocks (diffusers' `compile_repeated_blocks`) compiles
one block and reuses it for all of them: seconds to warm instead of minutes, most of the speed of
compiling the whole model. With `fullgraph=True` it cannot be combined with diffusers' step-cache
hooks, which are `torch.compiler.disable`d at block level; compiling each block's attention and
feed-forward parts (`attn1`, `attn2`, `ffn`) instead composes with them with no graph break. So a
job with a cache gets the parts form and one without gets the blocks form, and switching undoes
the other (a compiled module keeps its compiled call until it is cleared).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

Form = Literal["blocks", "parts"]
# The children of a transformer block compiled in the parts form (Wan: attn1, attn2, ffn; LTX:
# attn1, attn2, ff; the audio streams of LTX-2 have their own).
PARTS = frozenset({"attn1", "attn2", "ffn", "ff", "audio_attn1", "audio_attn2", "audio_ff"})
_STATE = "_moviola_compiled"
# Denoisers whose class declares no `_repeated_blocks` (diffusers 0.42), and their block class.
_BLOCKS_OF = {"CogVideoXTransformer3DModel": ("CogVideoXBlock",)}


def form_of(denoiser: Any) -> Form | None:
    return getattr(denoiser, _STATE, None)


def ensure(denoisers: Iterable[Any], form: Form | None) -> None:
    """Leave each denoiser compiled in `form` (None: not compiled), undoing the other form."""
    for denoiser in denoisers:
        current = form_of(denoiser)
        if current == form:
            continue
        if current is not None:
            _uncompile(denoiser)
        if form == "blocks":
            # What `compile_repeated_blocks(fullgraph=True)` does, for every model class.
            for block in _blocks(denoiser):
                block.compile(fullgraph=True)
        elif form == "parts":
            for part in _parts(denoiser):
                part.compile(fullgraph=True)
        setattr(denoiser, _STATE, form)


def _blocks(denoiser: Any) -> list[Any]:
    names = set(getattr(denoiser, "_repeated_blocks", ()) or ())
    names |= set(_BLOCKS_OF.get(type(denoiser).__name__, ()))
    return [m for m in denoiser.modules() if type(m).__name__ in names]


def _parts(denoiser: Any) -> Sequence[Any]:
    return [
        child
        for block in _blocks(denoiser)
        for name, child in block.named_children()
        if name in PARTS
    ]


def _uncompile(denoiser: Any) -> None:
    """Drop every compiled call under `denoiser`: its modules run eagerly again."""
    for module in denoiser.modules():
        if getattr(module, "_compiled_call_impl", None) is not None:
            module._compiled_call_impl = None
    setattr(denoiser, _STATE, None)


def compiled_modules(denoiser: Any) -> list[str]:
    """The names of `denoiser`'s modules that run compiled (for tests and diagnostics)."""
    return [
        name
        for name, module in denoiser.named_modules()
        if getattr(module, "_compiled_call_impl", None) is not None
    ]
