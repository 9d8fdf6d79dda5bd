"""Bad requests fail at planning, with the field to blame, before any model loads."""

import numpy as np
import pytest
from PIL import Image

from moviola.engine import GenerationRequest, UnknownModelError, plan
from moviola.engine.errors import UnsupportedInputError
from moviola.engine.request import MAX_PROMPT_CHARS
from moviola.errors import InvalidRequestError


def request(**kwargs):
    kwargs.setdefault("prompt", "a red kite over the dunes")
    kwargs.setdefault("model", "tiny")
    return GenerationRequest(**kwargs)


def test_defaults_come_from_the_model():
    p = plan(request(seed=7))
    assert p.render_size == p.size == (160, 96)
    assert p.fps == 16 and p.steps == 2 and p.guidance == 5.0 and p.seed == 7
    assert p.total_frames == 33 and len(p.segments) == 1


def test_seconds_become_frames_at_the_fps():
    p = plan(request(seconds=4, fps=8))
    assert p.total_frames == 32 and p.seconds == 4


def test_a_missing_seed_is_drawn_and_reported():
    assert isinstance(plan(request()).seed, int)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x" * (MAX_PROMPT_CHARS + 1)}, "prompt"),
        ({"seconds": 0}, "seconds"),
        ({"seconds": -4}, "seconds"),
        ({"seconds": 121}, "seconds"),
        ({"frames": 0}, "frames"),
        ({"seconds": 2, "frames": 10}, "frames"),
        ({"fps": 0}, "fps"),
        ({"steps": 0}, "steps"),
        ({"guidance": -1}, "guidance"),
        ({"seed": -1}, "seed"),
        ({"strength": 0}, "strength"),
        ({"size": (1281, 720)}, "size"),
    ],
)
def test_bad_values_name_their_param(kwargs, param):
    with pytest.raises(InvalidRequestError) as err:
        plan(request(**kwargs))
    assert err.value.param == param
    assert str(err.value)


def test_the_prompt_limit_is_configurable():
    with pytest.raises(InvalidRequestError, match="limit is 10"):
        plan(request(prompt="x" * 11, max_prompt_chars=10))


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(UnknownModelError, match="tiny") as err:
        plan(request(model="sora-3-ultra"))
    assert err.value.param == "model" and err.value.code == "model_not_found"


def test_only_one_input_kind():
    video = np.zeros((5, 32, 32, 3), np.uint8)
    with pytest.raises(InvalidRequestError, match="only one"):
        plan(request(image=Image.new("RGB", (32, 32)), video=video))


def test_an_empty_video_is_refused():
    with pytest.raises(InvalidRequestError) as err:
        plan(request(video=np.zeros((0, 32, 32, 3), np.uint8)))
    assert err.value.param == "video"


def test_input_the_model_cannot_take_is_refused():
    # wan2.1-t2v-1.3b starts from text alone (its image mode lives in another model).
    with pytest.raises(UnsupportedInputError, match="cannot start from an image") as err:
        plan(request(model="wan2.1-t2v-1.3b", image=Image.new("RGB", (32, 32))))
    assert err.value.param == "image"


def test_video_input_takes_the_source_length_and_size():
    video = np.zeros((21, 90, 160, 3), np.uint8)
    p = plan(request(video=video))
    assert p.total_frames == 21 and p.size == (160, 90)


def test_an_extension_adds_to_the_source():
    source = np.zeros((40, 96, 160, 3), np.uint8)
    p = plan(request(extend=source, seconds=2))
    assert p.existing_frames == 40 and p.total_frames == 72
    assert all(s.continues for s in p.segments)


def test_a_long_video_on_a_model_without_image_mode_chains_through_its_sibling():
    p = plan(request(model="wan2.1-t2v-1.3b", seconds=12))
    assert len(p.segments) > 1
    assert p.chain_spec is not None and p.chain_spec.id == "wan2.1-i2v-14b-480p"
