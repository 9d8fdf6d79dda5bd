"""User LoRAs on a warm pipeline: loaded once, switched on at each job's scales, off after.

Each LoRA becomes an adapter of the pipeline's denoiser(s) the first time a job uses it
(`load_lora_weights(…, adapter_name=…)`, into Wan 2.2 A14B's low-noise expert too, with
`load_into_transformer_2=True`) and stays loaded: a later job only sets the adapters it wants at
its scales (`set_adapters`). After the call every adapter is disabled, finished, failed or
cancelled, so a job without LoRAs computes exactly the base layers. The base weights are never
reloaded and never fused. At most `MAX_LOADED` user LoRAs stay loaded per pipeline; past that,
the one used least recently is deleted.

The step-distilled LoRA of `speed=fast` (`moviola.engine.distilled_run`) is one more adapter on
the same denoisers: a `fast` job with user LoRAs sets all of them together.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from weakref import WeakKeyDictionary

from moviola.engine.loras import ADAPTER_PREFIX, LibraryLora, LoraUse

MAX_LOADED = 8  # user LoRAs kept loaded per pipeline (a rank-64 14B LoRA is ~300 MB)

# Per denoiser (shared by a model's pipelines for every capability): user adapters, least
# recently used first.
_recent: WeakKeyDictionary[Any, OrderedDict[str, None]] = WeakKeyDictionary()


@contextmanager
def loras_applied(pipe: Any, uses: Sequence[LoraUse]) -> Iterator[None]:
    """`pipe` runs with `uses` at their scales inside the block, and with no adapter after."""
    try:
        activate(pipe, load(pipe, uses))
        yield
    finally:
        # Also after a load that failed half way: no adapter stays on for the next job.
        switch_off(pipe)


def load(pipe: Any, uses: Sequence[LoraUse]) -> dict[str, float]:
    """Load each LoRA of `uses` that `pipe` does not hold yet; `{adapter: scale}` for the job
    (one file named twice is one adapter at the sum of its scales)."""
    weights: dict[str, float] = {}
    for use in uses:
        _ensure_loaded(pipe, use.lora)
        weights[use.lora.adapter] = weights.get(use.lora.adapter, 0.0) + float(use.scale)
    _evict(pipe, keep=set(weights))
    return weights


def activate(pipe: Any, weights: Mapping[str, float]) -> None:
    """Set exactly the adapters of `weights` at their weights on every component that holds
    any of them; every other adapter of the pipeline is off."""
    for component in components(pipe):
        held = [name for name in weights if name in _adapters(component)]
        if held:
            component.set_adapters(held, [float(weights[name]) for name in held])
            component.enable_lora()
        else:
            component.disable_lora()


def switch_off(pipe: Any) -> None:
    """Disable every adapter of `pipe`: its components compute their base layers."""
    for component in components(pipe):
        component.disable_lora()


def components(pipe: Any) -> list[Any]:
    """The pipeline's components that hold any adapter."""
    found = []
    for name in getattr(pipe, "_lora_loadable_modules", ()):
        component = getattr(pipe, name, None)
        if component is not None and _adapters(component):
            found.append(component)
    return found


def loaded(pipe: Any) -> list[str]:
    """The user LoRA adapters `pipe`'s denoiser holds, least recently used first."""
    held = _adapters(pipe.transformer)
    return [name for name in _recent.get(pipe.transformer, {}) if name in held]


def _ensure_loaded(pipe: Any, lora: LibraryLora) -> None:
    adapter = lora.adapter
    with warnings.catch_warnings():
        # peft warns at every adapter after the first; several are what this module keeps.
        warnings.filterwarnings("ignore", message="Already found a `peft_config`")
        if adapter not in _adapters(pipe.transformer):
            pipe.load_lora_weights(str(lora.file), adapter_name=adapter)
        second = getattr(pipe, "transformer_2", None)
        if second is not None and adapter not in _adapters(second):
            # Wan 2.2 A14B: the low-noise expert takes its own file where the LoRA has one,
            # else the same weights as the high-noise expert (as a Wan 2.1 14B LoRA is used).
            pipe.load_lora_weights(
                str(lora.low_noise_file or lora.file),
                adapter_name=adapter,
                load_into_transformer_2=True,
            )
    recent = _recent.setdefault(pipe.transformer, OrderedDict())
    recent[adapter] = None
    recent.move_to_end(adapter)


def _evict(pipe: Any, keep: set[str]) -> None:
    recent = _recent.setdefault(pipe.transformer, OrderedDict())
    held = _adapters(pipe.transformer)
    for name in [n for n in recent if n not in held]:
        del recent[name]  # deleted some other way
    for name in [n for n in held if n.startswith(ADAPTER_PREFIX) and n not in recent]:
        recent[name] = None
        recent.move_to_end(name, last=False)  # loaded before this process kept count
    while len(recent) > MAX_LOADED:
        oldest = next((name for name in recent if name not in keep), None)
        if oldest is None:
            break
        for component in components(pipe):
            if oldest in _adapters(component):
                component.delete_adapters([oldest])
        del recent[oldest]


def _adapters(component: Any) -> Mapping[str, Any]:
    return getattr(component, "peft_config", None) or {}
