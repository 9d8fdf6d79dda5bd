"""First and last frame: a video between two given images, through `WanImageToVideoPipeline`'s
`last_image`, on models made for it (Wan 2.1 FLF2V; the `tiny-flf2v` test model has its shape).

The tiny models have random weights, so no test can ask their last frame to look like the given
image; what is checked is that the frame reaches the pipeline call and its denoiser, and changes
the video, on the same seed.
"""

from __future__ import annotations

import functools
import inspect
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from moviola.engine import GenerationRequest, get_model
from moviola.engine.catalogue import Capability, catalogue
from moviola.engine.errors import UnsupportedInputError
from moviola.engine.recognise import recognise
from moviola.engine.tiny import build_tiny_pipeline
from moviola.errors import InvalidRequestError

PUBLISHED = Path(__file__).parent / "published"
SIZE = (160, 96)
FIRST = Image.new("RGB", SIZE, (200, 80, 20))


def picture(seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def between(last: Image.Image | None, model: str = "tiny-flf2v", **kwargs) -> GenerationRequest:
    return GenerationRequest(
        "a heron lands",
        model=model,
        size=SIZE,
        frames=kwargs.pop("frames", 5),
        seed=7,
        image=kwargs.pop("image", FIRST),
        last_image=last,
        **kwargs,
    )


@pytest.fixture
def calls(engine, monkeypatch):
    """Every `WanImageToVideoPipeline` call, its arguments bound to the real signature (an
    argument the pipeline does not have fails the call, as it would in diffusers)."""
    from diffusers import WanImageToVideoPipeline

    real = WanImageToVideoPipeline.__call__
    seen: list[inspect.BoundArguments] = []

    @functools.wraps(real)  # so the engine reads the real signature too
    def spy(self, *args, **kwargs):
        bound = inspect.signature(real).bind(self, *args, **kwargs)
        seen.append(bound)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(WanImageToVideoPipeline, "__call__", spy)
    return seen


def test_the_last_frame_reaches_the_pipeline_call(engine, calls):
    last = picture(1)
    engine.generate(between(last))
    (call,) = calls
    assert call.arguments["image"].size == SIZE
    given = call.arguments["last_image"]
    assert isinstance(given, Image.Image) and given.size == SIZE
    assert np.array_equal(np.asarray(given), np.asarray(last))  # at the render size: untouched


def test_the_last_frame_changes_the_video_on_the_same_seed(engine):
    one = engine.generate(between(picture(1))).frames
    again = engine.generate(between(picture(1))).frames
    other = engine.generate(between(picture(2))).frames
    assert np.array_equal(one, again)  # deterministic per seed and frames
    assert not np.array_equal(one, other)


def test_the_denoiser_sees_the_last_frame_at_the_end_of_the_video(engine):
    """The pipeline hands the transformer noise, a mask and the frames' latents side by side
    (16 + 4 + 16 channels): the last frame is marked given and differs with the image, while
    the frames before it see nothing of it."""
    engine.generate(between(picture(1), frames=9))  # loads the pipeline
    views = engine.pipelines._views.values()  # the session engine holds other models too
    pipe = next(p for p in views if p.transformer.config.get("image_dim"))
    inputs: list[torch.Tensor] = []

    def keep(module, args, kwargs):
        inputs.append(kwargs["hidden_states"].detach().clone())

    hook = pipe.transformer.register_forward_pre_hook(keep, with_kwargs=True)
    try:
        engine.generate(between(picture(1), frames=9))
        first_run = len(inputs)
        engine.generate(between(picture(2), frames=9))
    finally:
        hook.remove()
    a, b = inputs[0][0], inputs[first_run][0]
    mask, latents = slice(16, 20), slice(20, 36)
    assert a[mask, 0].min() == 1 and a[mask, -1].max() == 1  # first and last frames given
    assert a[mask, 1:-1].abs().max() == 0  # none between
    assert torch.equal(a[latents, :-1], b[latents, :-1])
    assert not torch.equal(a[latents, -1], b[latents, -1])


def test_a_video_between_two_frames_is_one_generation(engine):
    """Longer than one call, the frames between would be split across calls that each need
    both ends: refused, naming the length."""
    with pytest.raises(InvalidRequestError) as err:
        engine.plan(between(picture(1), frames=40))
    assert err.value.param == "seconds"


def test_the_wan22_ti2v_image_path_would_ignore_a_last_image():
    """Why `tiny` (and Wan 2.2 TI2V) refuse a last frame: diffusers' `expand_timesteps` path
    pins the first latent frame and drops `last_image` without a word."""
    pipe = build_tiny_pipeline(get_model("tiny"))
    from diffusers import WanImageToVideoPipeline

    pipe = WanImageToVideoPipeline.from_pipe(pipe)
    assert pipe.config.expand_timesteps

    def run(last):
        return pipe(
            prompt="a heron",
            image=FIRST,
            last_image=last,
            height=SIZE[1],
            width=SIZE[0],
            num_frames=5,
            num_inference_steps=2,
            generator=torch.Generator().manual_seed(7),
            output_type="np",
        ).frames[0]

    assert np.array_equal(run(None), run(picture(1)))


def test_a_model_that_cannot_end_on_a_frame_refuses_one(engine):
    with pytest.raises(UnsupportedInputError) as err:
        engine.plan(between(picture(1), model="tiny"))
    assert err.value.param == "last_image"
    assert "tiny-flf2v" in err.value.message and "wan2.1-flf2v-14b-720p" in err.value.message
    able = sorted(spec.id for spec in catalogue().values() if spec.last_frame)
    assert able == ["tiny-flf2v", "wan2.1-flf2v-14b-720p"]


def test_a_first_and_last_frame_model_needs_both_frames(engine):
    with pytest.raises(InvalidRequestError) as err:
        engine.plan(between(None))
    assert err.value.param == "last_image"
    with pytest.raises(InvalidRequestError) as err:
        engine.plan(between(picture(1), image=None))
    assert err.value.param == "image"
    extend = np.zeros((5, SIZE[1], SIZE[0], 3), np.uint8)
    with pytest.raises(InvalidRequestError) as err:
        engine.plan(between(None, image=None, extend=extend, frames=None, seconds=1))
    assert err.value.param == "extend"


def test_the_flf2v_entry_takes_its_frames_through_the_image_pipeline():
    spec = get_model("wan2.1-flf2v-14b-720p")
    assert spec.last_frame and spec.capabilities == (Capability.IMAGE,)
    from diffusers import WanImageToVideoPipeline

    assert "last_image" in inspect.signature(WanImageToVideoPipeline.__call__).parameters
    assert spec.repo_id == "Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers"


def test_an_flf2v_folder_is_told_from_i2v_720p_by_its_transformer(tmp_path):
    """The two share every weight shape but FLF2V's position embedding of the frames' CLIP
    tokens; a folder is recognised by it even under the other's name."""
    flf2v = tmp_path / "Wan2.1-I2V-14B-720P-Diffusers"  # misnamed
    shutil.copytree(PUBLISHED / "wan2.1-flf2v-14b-720p", flf2v)
    found = recognise(flf2v)
    assert found.spec.id == "wan2.1-flf2v-14b-720p" and not found.tied_with
    assert any("pos_embed_seq_len=514" in reason for reason in found.reasons)
    assert any(
        r.startswith("not wan2.1-i2v-14b-720p: transformer.pos_embed_seq_len")
        for r in found.reasons
    )

    i2v = tmp_path / "Wan2.1-FLF2V-14B-720P-diffusers"  # misnamed the other way
    shutil.copytree(PUBLISHED / "wan2.1-i2v-14b-720p", i2v)
    assert recognise(i2v).spec.id == "wan2.1-i2v-14b-720p"
    config = json.loads((i2v / "transformer" / "config.json").read_text())
    assert "pos_embed_seq_len" not in config
