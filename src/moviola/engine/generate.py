"""Generation: a request in, frames and what it took out.

    engine = Engine(models_dir=...)
    result = engine.generate(GenerationRequest("a corgi surfing", model="tiny", seconds=2))
    result.frames  # uint8, T×H×W×3, at the render size

One call per segment: the first from the prompt (or the image, or the source video), each later
one from the last frame of the one before through an image-to-video pipeline; the stitched
result repeats and drops no frame.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moviola import audio as sound
from moviola.audio import Audio
from moviola.engine import attention, memory, parallel
from moviola.engine.calls import Call, call_kwargs
from moviola.engine.catalogue import Capability, ModelSpec
from moviola.engine.errors import GenerationCancelled, GenerationError
from moviola.engine.loading import PipelineCache, Placement, TiledRetry, resolve_model
from moviola.engine.loras import LoraUse
from moviola.engine.memory import MemoryPlan
from moviola.engine.meter import DeviceMeter
from moviola.engine.preview import Previewer
from moviola.engine.progress import (
    PREVIEW_EVERY_S,
    CancelToken,
    ProgressCallback,
    ProgressTracker,
    Stage,
)
from moviola.engine.references import as_images
from moviola.engine.request import AudioMode, GenerationRequest, Plan, SoundKind, plan
from moviola.engine.soundtrack import Soundtracks
from moviola.engine.speed import Speed, SpeedSettings, applied
from moviola.errors import MoviolaError


@dataclass
class GenerationResult:
    """Frames and facts about how they were made."""

    frames: np.ndarray  # the generated frames, uint8 T×H×W×3 at `render_size`
    fps: int
    seed: int
    model: str
    capability: Capability
    render_size: tuple[int, int]
    size: tuple[int, int]  # the size to encode at (what was asked for)
    segments: int
    steps: int
    guidance: float
    timings: dict[str, float] = field(default_factory=dict)  # seconds by stage
    peak_memory: dict[str, int] = field(default_factory=dict)  # bytes by stage
    prefix: np.ndarray | None = None  # an extension's source, kept untouched
    # The sound of the whole video (`video_frames()`, an extension's source included), exactly
    # as long, at 48 kHz; None: silent. `audio_kind` says what made it.
    audio: Audio | None = None
    audio_kind: SoundKind | None = None
    # Where the model ran (None: no video model ran), and whether its VAE decode ran out of
    # memory untiled and was done again tiled.
    memory: MemoryPlan | None = None
    vae_retried_tiled: bool = False

    @property
    def frame_count(self) -> int:
        return len(self.frames) + (0 if self.prefix is None else len(self.prefix))

    @property
    def seconds(self) -> float:
        return self.frame_count / self.fps

    def video_frames(self) -> Iterator[np.ndarray]:
        """Every frame of the finished video in order (an extension's source first)."""
        if self.prefix is not None:
            yield from self.prefix
        yield from self.frames


class Engine:
    """Runs generations, keeping recently used pipelines loaded between them."""

    def __init__(
        self,
        models_dir: Path | None = None,
        placement: Placement | None = None,
        max_loaded: int = 1,
        speed: SpeedSettings | None = None,
    ):
        self.models_dir = Path(models_dir) if models_dir else None
        self.placement = placement or Placement()
        self.speed = speed or SpeedSettings()
        self._attention: attention.Choice | None = None
        self._job_speed = Speed.QUALITY  # the speed of the generation running now
        self._job_loras: tuple[LoraUse, ...] = ()  # and its own LoRAs
        self.pipelines = PipelineCache(max_loaded=max_loaded)
        self.soundtracks = Soundtracks(self.models_dir, self.placement)
        # The memory plan of a generation's first pipeline, and its VAEs' tiled retries.
        self.last_memory: MemoryPlan | None = None
        self._retries: list[TiledRetry] = []
        self._call_memory: MemoryPlan | None = None  # the plan of the pipeline called next
        self._folder_sizes: dict[Path, tuple[float, dict[str, float]]] = {}
        self._busy = threading.Lock()
        # How often a generation with someone listening reports a preview of its latents.
        self.preview_every_s = PREVIEW_EVERY_S

    def check_speed_settings(self) -> attention.Choice:
        """Resolve this engine's speed settings on its device: an attention backend that is
        unknown or cannot run here is an error now, before any job (the choice is logged)."""
        if self._attention is None:
            device = self.placement.resolved_device()
            self.speed.compiles(device)  # an unknown compile setting is refused here too
            self._attention = attention.resolve(self.speed.attention, device)
            attention.log_choice(self._attention, device)
        return self._attention

    def compiles(self) -> bool:
        return self.speed.compiles(self.placement.resolved_device())

    def warm_up(self, model: str) -> float:
        """One short generation of `model` (two steps at its default size and length), so that
        its first job does not wait for the compiler; the seconds it took."""
        started = time.monotonic()
        self.generate(GenerationRequest("warm-up", model=model, steps=2, seed=0))
        return time.monotonic() - started

    @contextmanager
    def _speed(
        self, pipe: Any, spec: ModelSpec, call: Call, speed: Speed, defaults: dict[str, Any]
    ) -> Iterator[None]:
        """The job's speed preset on `pipe` for the block (see `moviola.engine.speed`)."""
        with applied(
            pipe,
            spec,
            call,
            speed,
            settings=self.speed,
            device=self.placement.resolved_device(),
            backend=self.check_speed_settings().backend,
            models_dir=self.models_dir,
            defaults=defaults,
            batch_cfg=self._call_memory is not None and self._call_memory.batch_cfg,
            loras=self._job_loras,
        ):
            yield

    def plan(self, request: GenerationRequest) -> Plan:
        """Check and resolve a request without loading anything."""
        spec = None
        if _looks_like_path(request.model):
            spec, _ = resolve_model(request.model, self.models_dir)
        return plan(request, spec)

    def generate(
        self,
        request: GenerationRequest,
        *,
        on_progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        cancel = cancel or CancelToken()
        the_plan = self.plan(request)
        with self._busy:
            return self._generate(request, the_plan, on_progress, cancel)

    def _generate(
        self,
        request: GenerationRequest,
        p: Plan,
        on_progress: ProgressCallback | None,
        cancel: CancelToken,
    ) -> GenerationResult:
        soundtrack = p.sound is SoundKind.SOUNDTRACK
        # "Add sound" with a soundtrack keeps the picture and never runs the video model.
        renders = not (p.keeps_picture and soundtrack)
        meter = DeviceMeter(self.placement.resolved_device())
        segments = len(p.segments) * renders + soundtrack
        tracker = ProgressTracker(on_progress, segments, meter, self.preview_every_s)
        tracker.enter(Stage.LOADING)
        cancel.raise_if_cancelled()
        self.last_memory, self._retries = None, []
        self._job_speed, self._job_loras = p.speed, p.loras
        new_audio: Audio | None = None
        lead: Audio | None = None
        if renders:
            frames, new_audio, lead = self._render(request, p, tracker, cancel)
        if p.keeps_picture:
            frames = np.asarray(request.video[: p.total_frames])
        if soundtrack:
            tracker.enter(Stage.SOUND, segment=len(p.segments) * renders)
            new_audio = self._soundtrack(request, p, len(frames), cancel)
            lead = None
        audio, kind = _compose(request, p, len(frames), new_audio, lead)
        tracker.enter(Stage.DONE, segment=tracker.segments - 1)
        return GenerationResult(
            frames=frames,
            fps=p.fps,
            seed=p.seed,
            model=p.spec.id,
            capability=p.capability,
            render_size=p.size if p.keeps_picture else p.render_size,
            size=p.size,
            segments=len(p.segments),
            steps=p.steps,
            guidance=p.guidance,
            timings=tracker.timings,
            peak_memory=tracker.peak_memory,
            prefix=request.extend,
            audio=audio,
            audio_kind=kind,
            memory=self.last_memory,
            vae_retried_tiled=any(r.happened for r in self._retries),
        )

    def _render(
        self, request: GenerationRequest, p: Plan, tracker: ProgressTracker, cancel: CancelToken
    ) -> tuple[np.ndarray, Audio | None, Audio | None]:
        """Every segment's frames, joined, and the sound the model made with them (None from a
        silent model), with the sound it made under the first segment's conditioning frame
        (the lead an extension's join crossfades into)."""
        width, height = p.render_size
        # Each reference is a latent frame ahead of the video's, in every call.
        longest = max(s.frames for s in p.segments) + p.references * p.spec.frame_rule.step
        # What the user named (an id or a folder), unless references routed it to another model.
        model = p.spec.id if p.routed_from else request.model
        references = tuple(as_images(request.reference_images))
        chain_model, chain_spec = (
            (model, p.spec) if p.chain_spec is None else (p.chain_spec.id, p.chain_spec)
        )
        pieces: list[np.ndarray] = []
        sounds: list[Audio | None] = []
        leads: list[Audio | None] = []
        last = _last_frame(request.extend) if request.extend is not None else None
        start = 0
        for segment in p.segments:
            cancel.raise_if_cancelled()
            capability, image, video = p.capability, None, None
            this_model, this_spec = model, p.spec
            if segment.continues:
                capability, image = Capability.IMAGE, _fit_image(last, (width, height))
                this_model, this_spec = chain_model, chain_spec
            elif capability is Capability.IMAGE:
                image = _fit_image(request.image, (width, height))
            last_image = None
            if request.last_image is not None and segment is p.segments[-1]:
                last_image = _fit_image(request.last_image, (width, height))
            elif capability is Capability.VIDEO:
                window = request.video[start : start + segment.frames]
                start += len(window)
                video = _fit_video(window, (width, height), segment.frames)

            call = Call(
                capability=capability,
                prompt=request.prompt,
                negative_prompt=request.negative_prompt,
                width=width,
                height=height,
                frames=segment.frames,
                fps=p.fps,
                steps=p.steps,
                guidance=p.guidance,
                generator=_generator(p.seed + segment.index),
                image=image,
                last_image=last_image,
                video=video,
                # "Add sound" keeps every frame of the source: nothing of it is re-noised.
                # Otherwise pipelines denoise int(steps × strength) steps: at least one, or a
                # light remix on few steps would run none and fail on an empty latent.
                strength=0.0 if p.keeps_picture else max(p.strength, 1 / p.steps),
                reference_images=references,
            )
            # Fetched per segment, not held: a chain model loaded in its place frees this one.
            this_pipe = self._pipeline(this_model, this_spec, capability, (width, height, longest))
            frames, audio = self._run(this_pipe, this_spec, call, tracker, segment.index, cancel)
            del this_pipe
            if frames.shape[1:3] != (height, width):
                frames = _resize_frames(frames, (width, height))
            lead = None
            if audio is not None:
                audio = sound.fit(audio, segment.frames, p.fps)
            if segment.continues:
                frames = frames[1:]  # the conditioning frame, already the previous one's last
                if audio is not None:
                    lead = sound.span(audio, 0, 1, p.fps)
                    audio = sound.span(audio, 1, segment.frames, p.fps)
            pieces.append(frames)
            sounds.append(audio)
            leads.append(lead)
            last = frames[-1]

        count = p.total_frames - p.existing_frames
        new_frames = np.concatenate(pieces)[:count]
        if all(a is None for a in sounds):
            return new_frames, None, None
        filled = [
            a if a is not None else sound.silence(sound.boundary(len(f), p.fps))
            for a, f in zip(sounds, pieces, strict=True)
        ]
        # Each later segment's lead blends the join with the one before; the first one's is
        # for joining onto an extension's source.
        joined = sound.join(filled, leads=[None, *leads[1:]])
        return new_frames, sound.fit(joined, count, p.fps), leads[0]

    def _soundtrack(
        self, request: GenerationRequest, p: Plan, frames: int, cancel: CancelToken
    ) -> Audio:
        made = self.soundtracks.make(
            request.prompt,
            seconds=frames / p.fps,
            seed=p.seed,
            model=request.soundtrack_model,
            cancel=cancel,
        )
        return sound.fit(made, frames, p.fps)

    def _pipeline(
        self, model: str, spec: ModelSpec, capability: Capability, shape: tuple[int, int, int]
    ) -> Any:
        """`model` is what the user named (an id or a folder); `spec` is its catalogue entry;
        `shape` the (width, height, frames) of its longest call, which the memory plan fits."""
        _, weights = resolve_model(model, self.models_dir)
        memory = self.memory_plan(spec, weights, *shape)
        pipe = self.pipelines.get(spec, weights, capability, self.placement, memory)
        retry = getattr(getattr(pipe, "vae", None), "tiled_retry", None)
        if retry is not None and retry not in self._retries:
            retry.happened = False
            self._retries.append(retry)
        self.last_memory = self.last_memory or memory
        self._call_memory = memory
        return pipe

    def memory_plan(
        self, spec: ModelSpec, weights: Path | None, width: int, height: int, frames: int
    ) -> MemoryPlan:
        """How a call of `spec` at this shape fits this engine's device now (the memory that
        this engine's own loaded pipelines hold counts as free: they make way if need be)."""
        accelerator = self.placement.on_accelerator
        sized = spec
        if weights is not None:
            if weights not in self._folder_sizes:
                self._folder_sizes[weights] = memory.folder_params(weights)
            sized = memory.with_params(spec, *self._folder_sizes[weights])
        fp = memory.footprint(sized, width, height, frames, accelerator=accelerator)
        available = memory.reclaimable_bytes(self.placement.resolved_device())
        if self.placement.context_parallel > 1:
            available = parallel.least(available)
        return memory.plan_for(
            spec,
            width,
            height,
            frames,
            [available],
            self.placement.memory,
            accelerator=accelerator,
            fp=fp,
            vae_tiling=self.placement.vae_tiling,
        )

    def _run(
        self,
        pipe: Any,
        spec: ModelSpec,
        call: Call,
        tracker: ProgressTracker,
        segment: int,
        cancel: CancelToken,
    ) -> tuple[np.ndarray, Audio | None]:
        """One pipeline call at the job's speed, reporting each step and stopping at once when
        cancelled: its frames, and its sound from a model that makes sound."""
        defaults = dict(spec.call_defaults)
        if spec.sigmas is not None and call.steps == len(spec.sigmas):
            defaults["sigmas"] = list(spec.sigmas)
        tracker.enter(Stage.ENCODING_PROMPT, segment=segment)
        state = {"denoising": False, "step": 0, "steps": call.steps}
        previewer: Previewer | None = None

        def before_forward(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
            # The first denoiser call marks the end of prompt encoding; every call is a chance
            # to stop (with CFG there are two per step), and, now and then, to show the
            # latents as they stand.
            nonlocal previewer
            cancel.raise_if_cancelled()
            if not state["denoising"]:
                state["denoising"] = True
                tracker.enter(Stage.DENOISING, segment=segment, steps=call.steps)
            step, steps = state["step"], state["steps"]
            if tracker.preview_due(segment, step, steps):
                if previewer is None:
                    previewer = Previewer(pipe, call.width, call.height, call.frames)
                latents = kwargs.get("hidden_states", args[0] if args else None)
                image = previewer.frame(latents)
                if image is not None:
                    tracker.preview(segment, step, image)

        def on_step(step: int, total: int) -> None:
            state["step"], state["steps"] = step, total
            tracker.step(segment, step, total)
            cancel.raise_if_cancelled()  # before the VAE decode, which is costly
            if step >= total:
                tracker.enter(Stage.DECODING, segment=segment, step=step, steps=total)

        # Wan 2.2 A14B hands the low-noise steps to a second expert, `transformer_2`.
        denoisers = [pipe.transformer, getattr(pipe, "transformer_2", None)]
        hooks = [
            d.register_forward_pre_hook(before_forward, with_kwargs=True)
            for d in denoisers
            if d is not None
        ]
        pipe.progress_bar = _StepReporter.factory(on_step)
        speed_undo = ExitStack()  # what the speed preset switched on, switched off after
        try:
            speed_undo.enter_context(self._speed(pipe, spec, call, self._job_speed, defaults))
            output = pipe(**call_kwargs(type(pipe), call, defaults))
        except MoviolaError:
            raise
        except Exception as err:  # the model's own failure: say which, keep the cause
            raise GenerationError(f"{spec.id} failed while generating: {err}") from err
        finally:
            for hook in hooks:
                hook.remove()
            pipe.__dict__.pop("progress_bar", None)
            # An exception skips the pipeline's own release of offloaded weights.
            if hasattr(pipe, "maybe_free_model_hooks"):
                pipe.maybe_free_model_hooks()
            speed_undo.close()
        audio = _model_audio(pipe, output) if spec.audio else None
        return _to_uint8(output.frames[0]), audio


class _StepReporter:
    """Stands in for the tqdm bar every diffusers pipeline drives once per denoising step."""

    def __init__(self, total: int, on_step: Any):
        self.total, self.n, self._on_step = total, 0, on_step

    @classmethod
    def factory(cls, on_step: Any) -> Any:
        def progress_bar(iterable: Any = None, total: int | None = None) -> Any:
            if iterable is not None:
                return _iterate(iterable, cls(len(iterable), on_step))
            return cls(total or 0, on_step)

        return progress_bar

    def update(self, n: int = 1) -> None:
        self.n += n
        self._on_step(self.n, self.total)

    def __enter__(self) -> _StepReporter:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def _iterate(iterable: Any, reporter: _StepReporter) -> Iterator[Any]:
    for item in iterable:
        yield item
        reporter.update()


def _model_audio(pipe: Any, output: Any) -> Audio:
    """The sound of one call of a model that makes sound (LTX-2: its vocoder's waveform,
    batch × channels × samples, as a tensor whatever the output type), at 48 kHz."""
    waveform = output.audio[0]
    if hasattr(waveform, "detach"):
        waveform = waveform.detach().float().cpu().numpy()
    samples = np.asarray(waveform, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[None]
    return sound.playable(Audio(samples, int(pipe.vocoder.config.output_sampling_rate)))


def _compose(
    request: GenerationRequest,
    p: Plan,
    count: int,
    new_audio: Audio | None,
    lead: Audio | None,
) -> tuple[Audio | None, SoundKind | None]:
    """The whole video's sound and what made it, from the new part's (`count` frames) and the
    source's: an extension keeps its source's sound for the source part; a remix or an edit
    by a silent model keeps the source's sound, aligned, unless another was asked for."""
    if p.audio is AudioMode.NONE:
        return None, None
    kind = p.sound if new_audio is not None else None
    source = sound.playable(request.source_audio) if request.source_audio is not None else None
    if request.extend is not None:
        if source is None and new_audio is None:
            return None, None
        before_frames = len(request.extend)
        before = (
            sound.fit(source, before_frames, p.fps)
            if source is not None
            else sound.silence(sound.boundary(before_frames, p.fps))
        )
        after = new_audio if new_audio is not None else sound.silence(sound.boundary(count, p.fps))
        whole = sound.join([before, after], leads=[None, lead])
        return sound.fit(whole, before_frames + count, p.fps), kind or SoundKind.SOURCE
    if new_audio is None and source is not None and p.capability is Capability.VIDEO:
        return sound.fit(source, count, p.fps), SoundKind.SOURCE
    return new_audio, kind


def _looks_like_path(model: str) -> bool:
    from moviola.engine.catalogue import catalogue

    return model not in catalogue() and (
        "/" in model or model.startswith(".") or Path(model).is_dir()
    )


def _generator(seed: int) -> Any:
    import torch

    # A CPU generator gives the same noise on any device, so a seed means the same video.
    return torch.Generator(device="cpu").manual_seed(seed % 2**63)


def _to_uint8(frames: Any) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames
    return (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _last_frame(video: np.ndarray) -> np.ndarray:
    return np.asarray(video[-1])


def _fit_image(image: Any, size: tuple[int, int]) -> Any:
    """Scale to cover `size` and centre-crop: a first frame must match the render size."""
    from PIL import Image, ImageOps

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    image = image.convert("RGB")
    if image.size == size:
        return image
    return ImageOps.fit(image, size, method=Image.Resampling.LANCZOS)


def _fit_video(frames: np.ndarray, size: tuple[int, int], count: int) -> list[Any]:
    """Source frames as PIL images at `size`, padded with the last to the `count` asked for."""
    images = [_fit_image(frame, size) for frame in frames]
    images += [images[-1]] * (count - len(images))
    return images


def _resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return np.stack(
        [np.asarray(Image.fromarray(f).resize(size, Image.Resampling.LANCZOS)) for f in frames]
    )


__all__ = ["Engine", "GenerationCancelled", "GenerationResult"]
