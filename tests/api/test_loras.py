"""`loras` through the Videos API, with the real `openai` SDK (`extra_body`, sent as multipart)
and raw JSON, against LoRAs made with peft for the tiny transformer in the server's library."""

from __future__ import annotations

import io

import numpy as np
import openai
import pytest

from moviola import media
from moviola.engine.lora_library import LoraLibrary, library_folder

pytestmark = pytest.mark.timeout(300)
SMALL = {"size": "160x96", "seconds": "1"}


@pytest.fixture(scope="module")
def loras(server, tiny_loras):
    """The server's library: `style` and `ltx` (made for tiny-ltx, which sora-2-pro runs)."""
    library = LoraLibrary(library_folder(server.data_dir))
    library.add(tiny_loras["diffusers"], "style")
    library.add(tiny_loras["tiny-ltx"], "ltx")
    return library


def ids(client) -> set[str]:
    return {video.id for video in client.videos.list(limit=100)}


def frames_of(client, video) -> np.ndarray:
    assert video.status == "completed", video.error
    data = client.videos.download_content(video.id).read()
    return media.decode_frames(io.BytesIO(data))[0]


def make(client, **extra):
    return client.videos.create_and_poll(
        prompt="a paper boat", extra_body={"seed": 21, **extra}, **SMALL
    )


def test_a_lora_reaches_the_pixels_at_its_scale(client, loras):
    plain = frames_of(client, make(client))
    zero = make(client, loras=[{"name": "style", "scale": 0}])
    assert np.array_equal(frames_of(client, zero), plain)
    styled = make(client, loras=[{"name": "style", "scale": 1}])
    assert not np.array_equal(frames_of(client, styled), plain)
    assert styled.moviola["loras"] == [{"name": "style", "scale": 1.0}]  # stored with the job
    assert make(client).moviola["loras"] is None


def test_json_bodies_take_loras_too(http, client, loras):
    response = http.post(
        "/v1/videos",
        json={"prompt": "a paper boat", **SMALL, "loras": [{"name": "style", "scale": -0.5}]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["moviola"]["loras"] == [{"name": "style", "scale": -0.5}]


def test_a_remix_inherits_the_loras_unless_it_gives_its_own(client, loras):
    source = make(client, loras=[{"name": "style", "scale": 0.7}])
    assert source.status == "completed", source.error
    inherited = client.videos.remix(source.id, prompt="the same, at night")
    assert inherited.moviola["loras"] == [{"name": "style", "scale": 0.7}]
    own = client.videos.remix(source.id, prompt="plain", extra_body={"loras": []})
    assert own.moviola["loras"] is None


@pytest.mark.parametrize(
    ("model", "loras_given", "says"),
    [
        ("sora-2", [{"name": "ltx", "scale": 1}], "LoRA 'ltx' was made for"),  # tiny-ltx's
        ("sora-2-pro", [{"name": "style", "scale": 1}], "does not fit tiny-ltx"),
        ("sora-2", [{"name": "nowhere", "scale": 1}], "no LoRA named 'nowhere'"),
        ("sora-2", [{"name": "style", "scale": 5}], "-2 to 2"),
        ("sora-2", [{"name": "style", "weight": 1}], "weight"),
        ("sora-2", [{"name": f"s{i}"} for i in range(5)], "at most 4"),
    ],
)
def test_a_lora_the_model_cannot_take_is_a_400_naming_loras_and_queues_nothing(
    client, loras, model, loras_given, says
):
    before = ids(client)
    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.create(prompt="x", model=model, **SMALL, extra_body={"loras": loras_given})
    assert caught.value.body["param"].split(".")[0] == "loras"
    assert says in caught.value.body["message"]
    assert ids(client) == before
