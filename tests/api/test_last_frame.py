"""`last_frame` on create: the video runs from `input_reference` to it, on a model made for two
frames (the `tiny-flf2v` test model here); as a file part, `{image_url}` or a data URL."""

from __future__ import annotations

import base64
import io
import time

import httpx
import numpy as np
import openai
import pytest
from PIL import Image

from moviola import media

SMALL = {"size": "160x96", "seconds": "0.3"}  # 5 frames at 16 fps: one generation


def png(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (160, 96), color).save(out, format="PNG")
    return out.getvalue()


def data_url(image: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(image).decode()


FIRST, BLUE, GREEN = png((200, 80, 20)), png((20, 80, 220)), png((30, 200, 60))


def finished(client, video_id: str):
    deadline = time.monotonic() + 120
    while (video := client.videos.retrieve(video_id)).status not in ("completed", "failed"):
        assert time.monotonic() < deadline, video
        time.sleep(0.1)
    return video


def frames(client, video_id: str, tmp_path) -> np.ndarray:
    path = tmp_path / f"{video_id}.mp4"
    client.videos.download_content(video_id).write_to_file(path)
    decoded, _ = media.decode_frames(path)
    return decoded


def count(client) -> int:
    return len(client.videos.list(limit=100).data)


def test_a_video_between_two_frames_through_the_sdk(client, tmp_path):
    made = {}
    for name, last in (("blue", BLUE), ("green", GREEN)):
        video = client.videos.create(
            prompt="dawn to dusk",
            model="tiny-flf2v",
            input_reference=("first.png", FIRST, "image/png"),
            **SMALL,
            extra_body={"seed": 5, "last_frame": {"image_url": data_url(last)}},
        )
        video = finished(client, video.id)
        assert video.status == "completed", video.error
        made[name] = frames(client, video.id, tmp_path)
    # Same seed and first frame: only the last frame differs, and the video with it.
    assert not np.array_equal(made["blue"], made["green"])


def test_the_last_frame_as_a_file_part_or_json(server, tmp_path):
    client = server.client()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        multipart = http.post(
            "/v1/videos",
            data={"prompt": "dawn to dusk", "model": "tiny-flf2v", **SMALL, "seed": "5"},
            files={
                "input_reference": ("first.png", FIRST, "image/png"),
                "last_frame": ("last.png", BLUE, "image/png"),
            },
        )
        as_json = http.post(
            "/v1/videos",
            json={
                "prompt": "dawn to dusk",
                "model": "tiny-flf2v",
                **SMALL,
                "seed": 5,
                "input_reference": {"image_url": data_url(FIRST)},
                "last_frame": data_url(BLUE),
            },
        )
    ids = [answer.json()["id"] for answer in (multipart, as_json)]
    videos = [finished(client, video_id) for video_id in ids]
    assert [v.status for v in videos] == ["completed", "completed"]
    kept = server.data_dir / "blobs" / ids[0] / "input.last.img"
    assert kept.read_bytes() == BLUE
    first, second = (frames(client, video_id, tmp_path) for video_id in ids)
    assert np.array_equal(first, second)  # the same request, however it came


def test_a_model_that_cannot_end_on_a_frame_is_400_naming_last_frame(client):
    before = count(client)
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.create(
            prompt="dawn to dusk",
            model="sora-2",  # tiny: the Wan 2.2 TI2V shape, which would ignore it
            input_reference=("first.png", FIRST, "image/png"),
            **SMALL,
            extra_body={"last_frame": data_url(BLUE)},
        )
    assert err.value.body["param"] == "last_frame"
    assert "tiny-flf2v" in err.value.body["message"]
    assert count(client) == before


def test_both_frames_are_needed_and_each_is_checked_as_itself(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.create(
            prompt="dusk", model="tiny-flf2v", **SMALL, extra_body={"last_frame": data_url(BLUE)}
        )
    assert err.value.body["param"] == "input_reference"
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.create(
            prompt="dawn",
            model="tiny-flf2v",
            input_reference=("first.png", FIRST, "image/png"),
            **SMALL,
        )
    assert err.value.body["param"] == "last_frame"
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.create(
            prompt="dawn to dusk",
            model="tiny-flf2v",
            input_reference=("first.png", FIRST, "image/png"),
            **SMALL,
            extra_body={"last_frame": "data:image/png;base64,bm90IGFuIGltYWdl"},
        )
    assert err.value.body["param"] == "last_frame"
