"""A field no endpoint takes is refused, never ignored: 400 naming it, nothing queued. What each
endpoint takes is its request model, which the registry of Moviola's own fields builds."""

from __future__ import annotations

import httpx
import openai
import pytest

from moviola.api.schemas import (
    CreateVideoRequest,
    EditVideoRequest,
    ExtendVideoRequest,
    RemixVideoRequest,
)
from moviola.jobs.fields import fields_for
from moviola.store.models import VideoKind


def count(client) -> int:
    return len(client.videos.list(limit=100).data)


def multipart(fields: dict[str, str]) -> dict[str, tuple[None, str]]:
    """Plain fields sent as multipart parts, as the SDK sends them."""
    return {name: (None, value) for name, value in fields.items()}


def refused(answer: httpx.Response, param: str) -> str:
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == param and error["code"] == "unknown_parameter", error
    return error["message"]


def test_an_unknown_json_field_is_400_naming_it(client, http, small):
    before = count(client)
    message = refused(
        http.post("/v1/videos", json={"prompt": "a heron", **small, "lora": "x"}), "lora"
    )
    assert "unknown field 'lora'" in message
    assert "prompt" in message and "seed" in message  # says what it does take
    assert count(client) == before


def test_an_unknown_form_field_is_400_naming_it(client, http, small):
    before = count(client)
    form = {"prompt": "a heron", **small, "num_frames": "33"}
    refused(http.post("/v1/videos", data=form), "num_frames")  # url-encoded
    refused(http.post("/v1/videos", files=multipart(form)), "num_frames")
    assert count(client) == before


def test_an_unknown_extra_body_field_is_400_naming_it(client, small):
    before = count(client)
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.create(prompt="a heron", **small, extra_body={"cfg": 7})
    assert err.value.body["param"] == "cfg" and err.value.body["code"] == "unknown_parameter"
    assert count(client) == before


def test_an_unknown_key_of_a_reference_is_400_naming_it(http, small):
    body = {"prompt": "a heron", **small, "input_reference": {"image_url": "data:,", "crop": 1}}
    refused(http.post("/v1/videos", json=body), "input_reference.crop")
    form = {"prompt": "a heron", **small, "input_reference[crop]": "1"}
    refused(http.post("/v1/videos", files=multipart(form)), "input_reference.crop")


def test_an_unknown_file_part_is_400_naming_it(client, http, small, make_png):
    before = count(client)
    answer = http.post(
        "/v1/videos",
        data={"prompt": "a heron", **small},
        files={"first_frame": ("a.png", make_png(), "image/png")},
    )
    assert "input_reference, last_frame" in refused(answer, "first_frame")
    assert count(client) == before


def test_seed_on_a_remix_is_400(client, done_video):
    """A remix draws a seed of its own; a seed given to one would be ignored, so it is refused."""
    before = count(client)
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.remix(done_video.id, prompt="as a watercolour", extra_body={"seed": 3})
    assert err.value.body["param"] == "seed"
    assert "a remix draws a seed of its own" in err.value.body["message"]
    assert count(client) == before


def test_a_field_of_another_endpoint_is_400_on_edits_and_extensions(client, http, done_video):
    source = {"video[id]": done_video.id}
    edit = multipart({"prompt": "brighter", **source, "strength": "0.5"})
    refused(http.post("/v1/videos/edits", files=edit), "strength")
    extend = multipart({"prompt": "on", "seconds": "4", **source, "size": "64x64"})
    refused(http.post("/v1/videos/extensions", files=extend), "size")


def test_an_unknown_character_field_is_400(http, done_mp4):
    answer = http.post(
        "/v1/videos/characters",
        data={"name": "Mara", "voice": "low"},
        files={"video": ("mara.mp4", done_mp4, "video/mp4")},
    )
    refused(answer, "voice")


def test_every_documented_field_is_still_taken(client, small):
    video = client.videos.create(
        prompt="a heron",
        model="sora-2",
        **small,
        extra_body={
            "seed": 5,
            "n": 1,
            "negative_prompt": "blur",
            "num_inference_steps": 2,
            "guidance_scale": 4.5,
            "fps": 16,
            "audio": "none",
            "speed": "quality",
        },
    )
    assert video.model_extra["moviola"]["seed"] == 5


@pytest.mark.parametrize(
    ("model", "kind"),
    [
        (CreateVideoRequest, VideoKind.CREATE),
        (RemixVideoRequest, VideoKind.REMIX),
        (EditVideoRequest, VideoKind.EDIT),
        (ExtendVideoRequest, VideoKind.EXTEND),
    ],
)
def test_a_registered_field_is_taken_by_the_endpoints_of_its_kinds(model, kind):
    """No second list: an endpoint takes what the registry gives its kind, and only that."""
    ours = {field.name for field in fields_for(kind)}
    registered = {field.name for kind_ in VideoKind for field in fields_for(kind_)}
    assert ours <= set(model.model_fields)
    assert not (registered - ours) & set(model.model_fields)
