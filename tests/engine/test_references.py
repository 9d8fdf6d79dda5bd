"""Reference images reach the pixels: routed to a VACE model, kept on every segment and shot.

`tiny` takes no references; `tiny-vace` (the real WanVACE classes, random weights) serves them
for it, as Wan 2.1 VACE serves the Wan models. A character's frames are reference images too.
"""

from __future__ import annotations

import inspect

import diffusers
import numpy as np
import pytest
from PIL import Image

from moviola.engine import (
    Capability,
    GenerationRequest,
    UnsupportedInputError,
    catalogue,
    get_model,
    plan,
)
from moviola.engine.calls import Call, call_kwargs
from moviola.engine.references import MAX_REFERENCES
from moviola.engine.storyboard import StoryboardShot, generate_storyboard
from moviola.errors import InvalidRequestError

RED = Image.new("RGB", (64, 80), (210, 30, 30))
BLUE = Image.new("RGB", (64, 80), (30, 30, 210))


def request(**kwargs):
    kwargs.setdefault("seed", 21)
    kwargs.setdefault("frames", 9)
    return GenerationRequest(prompt="a heron lands", model="tiny", size=(160, 96), **kwargs)


# --- planning: which model renders a request with references -------------------------------


@pytest.mark.parametrize(
    ("model", "served_by"),
    [
        ("tiny", "tiny-vace"),
        ("tiny-vace", "tiny-vace"),
        ("wan2.1-t2v-1.3b", "wan2.1-vace-1.3b"),
        ("wan2.2-ti2v-5b", "wan2.1-vace-1.3b"),  # sora-2's default target
        ("wan2.1-t2v-14b", "wan2.1-vace-14b"),
        ("wan2.2-t2v-a14b", "wan2.1-vace-14b"),
        ("ltx-2", "wan2.1-vace-14b"),  # sora-2-pro's default target
    ],
)
def test_a_request_with_references_is_planned_on_its_reference_model(model, served_by):
    planned = plan(GenerationRequest("a heron", model=model, reference_images=[RED]))
    assert planned.spec.id == served_by and planned.references == 1
    assert planned.routed_from == (None if model == served_by else model)
    # Without references the model asked for renders.
    assert plan(GenerationRequest("a heron", model=model)).spec.id == model


def test_every_wan_model_has_the_vace_model_of_its_size():
    for spec in catalogue().values():
        if spec.is_test_model or not spec.family.startswith("wan") or spec.takes_references:
            continue
        if spec.last_frame:  # it needs its own last frame, which VACE does not take
            assert spec.reference_model is None, spec.id
            continue
        assert spec.transformer is not None
        small = spec.transformer.published_params < 6e9
        assert spec.reference_model == ("wan2.1-vace-1.3b" if small else "wan2.1-vace-14b"), spec.id
        served = get_model(spec.reference_model)
        assert served.takes_references and served.fps == 16
        assert served.supports(Capability.TEXT) and served.supports(Capability.IMAGE)


def test_a_model_with_no_reference_route_is_refused_naming_the_field():
    with pytest.raises(UnsupportedInputError) as err:
        plan(GenerationRequest("a heron", model="ltx-video", reference_images=[RED]))
    assert err.value.param == "reference_images"
    assert "wan2.1-vace-14b" in err.value.message  # it says which models take them


def test_references_make_a_new_video_and_are_counted():
    source = np.zeros((9, 96, 160, 3), np.uint8)
    with pytest.raises(UnsupportedInputError) as err:
        plan(request(video=source, frames=None, reference_images=[RED]))
    assert err.value.param == "reference_images"
    with pytest.raises(InvalidRequestError) as err:
        plan(request(reference_images=[RED] * (MAX_REFERENCES + 1)))
    assert err.value.param == "reference_images"


# --- the call: what VACE is given ---------------------------------------------------------------


def test_vace_takes_the_first_frame_as_its_control_video_and_the_references_as_they_are():
    frame = Image.new("RGB", (160, 96), (0, 200, 0))
    call = Call(
        capability=Capability.IMAGE,
        prompt="a heron",
        negative_prompt=None,
        width=160,
        height=96,
        frames=9,
        fps=16,
        steps=2,
        guidance=5.0,
        generator=None,
        image=frame,
        reference_images=(RED, BLUE),
    )
    kwargs = call_kwargs(diffusers.WanVACEPipeline, call, {})
    assert set(kwargs) <= set(inspect.signature(diffusers.WanVACEPipeline.__call__).parameters)
    assert kwargs["reference_images"] == [RED, BLUE]
    video, mask = kwargs["video"], kwargs["mask"]
    assert len(video) == len(mask) == 9 and video[0] is frame
    assert mask[0].getextrema() == (0, 0)  # kept
    assert all(m.getextrema() == (255, 255) for m in mask[1:])  # made
    # A pipeline without references is never handed them quietly dropped.
    with pytest.raises(UnsupportedInputError) as err:
        call_kwargs(diffusers.WanPipeline, call, {})
    assert err.value.param == "reference_images"


# --- the frames ---------------------------------------------------------------------------------


def test_a_reference_changes_the_frames_and_its_content_matters(engine):
    plain = engine.generate(request())
    red = engine.generate(request(reference_images=[RED]))
    again = engine.generate(request(reference_images=[RED]))
    blue = engine.generate(request(reference_images=[BLUE]))
    assert red.model == "tiny-vace" and plain.model == "tiny"
    assert red.frames.shape == plain.frames.shape == (9, 96, 160, 3)
    assert np.array_equal(red.frames, again.frames)  # deterministic per seed
    assert not np.array_equal(red.frames, plain.frames)
    assert not np.array_equal(red.frames, blue.frames)  # what the reference shows reaches them
    other_seed = engine.generate(request(reference_images=[RED], seed=22))
    assert not np.array_equal(red.frames, other_seed.frames)


def test_more_references_than_a_short_call_has_latent_frames(engine):
    # Five references for a five-frame video (two latent frames): each still its own frame.
    result = engine.generate(request(frames=5, reference_images=[RED, BLUE] * 2 + [RED]))
    assert result.model == "tiny-vace" and result.frames.shape == (5, 96, 160, 3)


def test_the_reference_model_follows_the_prompt_and_a_first_frame(engine):
    red = engine.generate(request(reference_images=[RED]))
    other = engine.generate(
        GenerationRequest(
            "a cat asleep", model="tiny", size=(160, 96), frames=9, seed=21, reference_images=[RED]
        )
    )
    started = engine.generate(request(reference_images=[RED], image=Image.new("RGB", (160, 96))))
    assert not np.array_equal(red.frames, other.frames)
    assert started.capability is Capability.IMAGE
    assert not np.array_equal(red.frames, started.frames)


class LatentFrames:
    """How many latent frames each call of the reference model's denoiser saw (a forward
    pre-hook on the loaded pipeline's real transformer)."""

    def __init__(self, engine):
        spec = get_model("tiny-vace")
        engine.generate(request(reference_images=[RED]))  # loaded, and its placement known
        pipe = engine.pipelines.get(
            spec, None, Capability.TEXT, engine.placement, engine.last_memory
        )
        self.seen: list[int] = []
        self._hook = pipe.transformer.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module, args, kwargs):
        self.seen.append(kwargs["hidden_states"].shape[2])
        assert kwargs["control_hidden_states"].shape[2] == kwargs["hidden_states"].shape[2]

    def close(self):
        self._hook.remove()


@pytest.fixture
def latent_frames(engine):
    watch = LatentFrames(engine)
    yield watch
    watch.close()


def latent(frames: int) -> int:
    return (frames - 1) // 4 + 1


def test_a_long_video_keeps_its_references_on_every_segment(engine, latent_frames):
    long = request(frames=None, seconds=5, reference_images=[RED, BLUE])
    planned = plan(long)
    assert len(planned.segments) == 3
    result = engine.generate(long)
    assert result.segments == 3 and result.model == "tiny-vace"
    # Two forwards a step (guidance), two steps, every segment: each with both references.
    expected = [latent(s.frames) + 2 for s in planned.segments for _ in range(2 * 2)]
    assert latent_frames.seen == expected


def test_a_storyboard_keeps_a_characters_frames_in_every_shot_that_names_it(engine, latent_frames):
    base = GenerationRequest(prompt="", model="tiny", size=(160, 96), seed=5, steps=1)
    frames = (RED, BLUE)  # a character's two reference frames
    shots = [
        StoryboardShot("Ada opens the door", 0.5, reference_images=frames),
        StoryboardShot("the wind blows", 0.5),
        StoryboardShot("Ada walks out", 0.5, reference_images=frames),
    ]
    board = generate_storyboard(engine, shots, base)
    assert board.result.model == "tiny-vace"  # every shot on the model that takes them
    assert [len(shot.frames) for shot in board.shots] == [8, 8, 8]
    # One step, two forwards a shot; each shot one segment that continues from the last frame.
    per_shot = [latent_frames.seen[i : i + 2] for i in range(0, 6, 2)]
    assert per_shot[0][0] == per_shot[2][0] == per_shot[1][0] + 2
    without = generate_storyboard(
        engine, [StoryboardShot(s.prompt, s.seconds) for s in shots], base
    )
    assert without.result.model == "tiny"
    assert not np.array_equal(board.shots[2].frames, without.shots[2].frames)
