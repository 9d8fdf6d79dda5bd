"""Soundtracks for silent models: a text-to-audio pipeline from diffusers, cut to the picture.

    audio = Soundtracks().make("rain on a tin roof", seconds=6.0, seed=7, model="tiny-audio")

A request with `audio=soundtrack` (or a silent model's "add sound") gets its sound here: Stable
Audio Open (`StableAudioPipeline`) conditioned on the prompt. One call makes at most the model's
`max_seconds`; a longer video gets several windows, each from the next seed, joined with a short
crossfade. Like video models, weights come from `<models_dir>/<id>/` or the Hugging Face cache,
never from a download in the middle of a job; `tiny-audio` is built in code for tests.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moviola.audio import Audio, join, playable
from moviola.engine.errors import GenerationError, UnknownModelError
from moviola.engine.loading import Placement, find_weights
from moviola.engine.memory import MemoryPreference
from moviola.engine.progress import CancelToken
from moviola.errors import MoviolaError


@dataclass(frozen=True)
class SoundtrackSpec:
    """One text-to-audio model."""

    id: str
    name: str
    repo_id: str | None  # None: built in code (a test model)
    pipeline: str  # the diffusers class its model_index.json names
    max_seconds: float  # the longest sound one call makes
    default_steps: int
    default_guidance: float
    license: str
    negative_prompt: str | None = None
    vram_gb: float = 0.0  # rough peak, half precision
    description: str = ""
    is_test_model: bool = False


STABLE_AUDIO_OPEN = SoundtrackSpec(
    id="stable-audio-open-1.0",
    name="Stable Audio Open 1.0",
    repo_id="stabilityai/stable-audio-open-1.0",
    pipeline="StableAudioPipeline",
    # 47.55 s is the model's window (the pipeline's default audio_end_in_s); whole seconds
    # keep every window's start on a frame boundary.
    max_seconds=47.0,
    default_steps=100,  # the diffusers pipeline's default; the model card shows 200
    default_guidance=7.0,
    license="Stability AI Community License",
    negative_prompt="Low quality.",
    vram_gb=6.0,
    description="Sound effects, ambience and music from a prompt, 44.1 kHz stereo, up to 47 s",
)

SOUNDTRACK_MODELS: tuple[SoundtrackSpec, ...] = (STABLE_AUDIO_OPEN,)


def _tiny() -> SoundtrackSpec:
    from moviola.engine.tiny import TINY_AUDIO_MAX_SECONDS, TINY_SOUNDTRACK_ID

    return SoundtrackSpec(
        id=TINY_SOUNDTRACK_ID,
        name="Tiny test soundtrack model (Stable Audio shape)",
        repo_id=None,
        pipeline="StableAudioPipeline",
        max_seconds=float(int(TINY_AUDIO_MAX_SECONDS)),  # whole seconds, as Stable Audio's
        default_steps=2,
        default_guidance=7.0,
        license="Apache-2.0",
        description="A test model with random weights: it makes noise, not sound.",
        is_test_model=True,
    )


def soundtrack_models() -> dict[str, SoundtrackSpec]:
    """Every text-to-audio model Moviola knows, test models first."""
    return {spec.id: spec for spec in (_tiny(), *SOUNDTRACK_MODELS)}


def get_soundtrack_model(model_id: str) -> SoundtrackSpec:
    models = soundtrack_models()
    if model_id not in models:
        known = ", ".join(sorted(models))
        raise UnknownModelError(f"unknown soundtrack model {model_id!r}; known: {known}")
    return models[model_id]


class Soundtracks:
    """Makes soundtracks, keeping the last text-to-audio pipeline loaded (a few GB at most, so
    it stays beside the video model rather than taking its place)."""

    def __init__(self, models_dir: Path | None = None, placement: Placement | None = None):
        self.models_dir = models_dir
        self.placement = placement or Placement()
        self._loaded: tuple[tuple[str, str], Any] | None = None
        self._lock = threading.Lock()

    def make(
        self,
        prompt: str,
        *,
        seconds: float,
        seed: int,
        model: str,
        negative_prompt: str | None = None,
        steps: int | None = None,
        cancel: CancelToken | None = None,
        on_window: Callable[[int, int], None] | None = None,
    ) -> Audio:
        """A soundtrack at least `seconds` long (the caller cuts it to the frames)."""
        spec = get_soundtrack_model(model)
        cancel = cancel or CancelToken()
        windows = max(1, math.ceil(seconds / spec.max_seconds - 1e-9))
        pipe = self._pipeline(spec)
        pieces = []
        for index in range(windows):
            cancel.raise_if_cancelled()
            length = min(spec.max_seconds, seconds - index * spec.max_seconds)
            pieces.append(
                self._window(
                    pipe, spec, prompt, negative_prompt, length, seed + index, steps, cancel
                )
            )
            if on_window is not None:
                on_window(index + 1, windows)
        return join(pieces)

    def _window(
        self,
        pipe: Any,
        spec: SoundtrackSpec,
        prompt: str,
        negative_prompt: str | None,
        seconds: float,
        seed: int,
        steps: int | None,
        cancel: CancelToken,
    ) -> Audio:
        import torch

        # The pipeline cuts its output at a whole sample of its own rate: ask for a little more
        # than the window (the caller trims to the frames), never more than it can make.
        end = min(spec.max_seconds, seconds + 0.05)

        def check(step: int, timestep: Any, latents: Any) -> None:
            cancel.raise_if_cancelled()

        try:
            output = pipe(
                prompt,
                negative_prompt=negative_prompt or spec.negative_prompt,
                audio_end_in_s=end,
                num_inference_steps=steps or spec.default_steps,
                guidance_scale=spec.default_guidance,
                generator=torch.Generator(device="cpu").manual_seed(seed % 2**63),
                callback=check,
                output_type="np",
            )
        except MoviolaError:
            raise
        except Exception as err:  # the model's own failure: say which, keep the cause
            raise GenerationError(f"{spec.id} failed while making the soundtrack: {err}") from err
        samples = np.asarray(output.audios[0], dtype=np.float32)
        return playable(Audio(samples, int(pipe.vae.config.sampling_rate)))

    def _pipeline(self, spec: SoundtrackSpec) -> Any:
        weights = find_weights(spec, self.models_dir)
        key = (spec.id, str(weights))
        with self._lock:
            if self._loaded is not None and self._loaded[0] == key:
                return self._loaded[1]
            self._loaded = None
            pipe = _load(spec, weights, self.placement)
            self._loaded = (key, pipe)
            return pipe


def _load(spec: SoundtrackSpec, weights: Path | None, placement: Placement) -> Any:
    import torch

    device = placement.resolved_device()
    on_accelerator = not device.startswith("cpu")
    if weights is None:
        from moviola.engine.tiny import build_tiny_stable_audio

        pipe = build_tiny_stable_audio()
    else:
        import diffusers

        # Stable Audio's own card runs it in float16; a CPU runs float32.
        dtype = torch.float16 if on_accelerator else torch.float32
        pipe = getattr(diffusers, spec.pipeline).from_pretrained(str(weights), dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    # A soundtrack model is small (Stable Audio Open: 1.2B and a T5-base, ~3 GB in fp16) and
    # runs after the video model's call: resident, unless the worker is asked to be lean.
    if on_accelerator and placement.memory is MemoryPreference.LOW:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    return pipe
