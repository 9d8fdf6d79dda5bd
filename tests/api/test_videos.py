"""The Videos API through the official `openai` SDK, as an app that used Sora calls it."""

from __future__ import annotations

import asyncio
import base64
import io

import pytest
from openai import AsyncOpenAI, BadRequestError, NotFoundError, omit

from moviola import media

VIDEO_KEYS = {
    "id",
    "object",
    "created_at",
    "completed_at",
    "expires_at",
    "status",
    "progress",
    "model",
    "prompt",
    "seconds",
    "size",
    "remixed_from_video_id",
    "error",
}


def check_shape(raw: dict) -> None:
    assert set(raw) >= VIDEO_KEYS, VIDEO_KEYS - set(raw)
    assert raw["object"] == "video" and raw["id"].startswith("video_")
    assert isinstance(raw["created_at"], int) and isinstance(raw["seconds"], str)


def test_create_and_poll_then_download_every_variant(client, http, tmp_path):
    video = client.videos.create_and_poll(prompt="a paper boat drifting at dawn", model="sora-2")
    assert video.status == "completed", video.error
    assert (video.size, video.seconds, video.model, video.progress) == (
        "720x1280",
        "4",
        "sora-2",
        100,
    )
    assert video.completed_at >= video.created_at and video.error is None
    check_shape(http.get(f"/v1/videos/{video.id}").json())

    again = client.videos.retrieve(video.id)
    assert again.id == video.id and again.status == "completed"
    assert again.moviola["engine_model"] == "tiny"  # extra fields survive the SDK's parsing

    path = tmp_path / "video.mp4"
    client.videos.download_content(video.id).write_to_file(path)
    info = media.probe(path)
    assert (info.width, info.height) == (720, 1280)
    assert float(info.fps) == again.moviola["render"]["fps"]
    assert info.duration == pytest.approx(4.0, abs=0.07)

    thumbnail = client.videos.download_content(video.id, variant="thumbnail").read()
    assert thumbnail[:4] == b"RIFF" and thumbnail[8:12] == b"WEBP"
    spritesheet = client.videos.download_content(video.id, variant="spritesheet").read()
    assert spritesheet[:3] == b"\xff\xd8\xff"


def test_input_reference_as_an_uploaded_png(client, make_png, small):
    named = client.videos.create_and_poll(
        prompt="the boat sets off", input_reference=("first.png", make_png(), "image/png"), **small
    )
    assert named.status == "completed", named.error
    # Bare bytes: the SDK names the part "upload" with no useful type; the bytes say PNG.
    bare = client.videos.create(prompt="the boat sets off", input_reference=make_png(), **small)
    assert bare.status == "queued"


def test_input_reference_as_a_data_url(client, make_png, small):
    # The SDK's own parameter only takes files (it asserts so), so an {"image_url"} object goes
    # through extra_body: the multipart field input_reference[image_url].
    url = "data:image/png;base64," + base64.b64encode(make_png(128, 128)).decode()
    video = client.videos.create_and_poll(
        prompt="a lighthouse", extra_body={"input_reference": {"image_url": url}}, **small
    )
    assert video.status == "completed", video.error


def test_input_reference_fetched_from_a_url(server, client, done_video, small):
    # The server fetches the image itself; here it is this server's own thumbnail (WebP).
    url = f"{server.url}/v1/videos/{done_video.id}/content?variant=thumbnail"
    video = client.videos.create(
        prompt="from a URL", extra_body={"input_reference": {"image_url": url}}, **small
    )
    assert video.status == "queued"
    with pytest.raises(BadRequestError) as caught:
        client.videos.create(
            prompt="from nowhere",
            extra_body={"input_reference": {"image_url": f"{server.url}/missing.png"}},
            **small,
        )
    assert caught.value.body["param"] == "input_reference.image_url"
    assert "HTTP 404" in caught.value.message


def test_list_pages_in_both_orders(client, small):
    ids = [client.videos.create(prompt=f"clip {i}", **small).id for i in range(5)]

    first = client.videos.list(limit=2, order="asc", after=ids[0])
    assert [v.id for v in first.data] == ids[1:3] and first.has_more
    assert (first.first_id, first.last_id) == (ids[1], ids[2])
    second = client.videos.list(limit=2, order="asc", after=first.last_id)
    assert [v.id for v in second.data] == ids[3:5]

    newest = client.videos.list(limit=2, order="desc")
    assert [v.id for v in newest.data] == [ids[4], ids[3]] and newest.has_more
    older = client.videos.list(limit=2, order="desc", after=newest.last_id)
    assert [v.id for v in older.data] == [ids[2], ids[1]]

    # The SDK's auto-pagination follows after=last_id until has_more is false.
    everything = [v.id for v in client.videos.list(limit=2, order="asc")]
    assert [i for i in everything if i in ids] == ids
    assert len(everything) == len(set(everything))
    newest_first = [v.id for v in client.videos.list(limit=2)]
    assert [i for i in newest_first if i in ids] == ids[::-1]


def test_a_page_goes_on_after_its_cursor_was_deleted(client, small):
    ids = [client.videos.create(prompt=f"page {i}", **small).id for i in range(3)]
    client.videos.delete(ids[0])
    after = client.videos.list(limit=2, order="asc", after=ids[0])
    assert [v.id for v in after.data] == ids[1:3]
    with pytest.raises(NotFoundError):
        client.videos.list(after="video_" + "0" * 32)


def test_remix(client, done_video):
    remix = client.videos.remix(done_video.id, prompt="the same boat, at night")
    assert remix.remixed_from_video_id == done_video.id
    assert (remix.size, remix.seconds) == (done_video.size, done_video.seconds)
    assert client.videos.poll(remix.id).status == "completed"


def by_id(video_id: str) -> dict:
    # The SDK's `video` parameter asserts that it is a file, so {"id": …} travels in
    # extra_body, which arrives as the same multipart field, video[id].
    return {"video": omit, "extra_body": {"video": {"id": video_id}}}


def test_edit_by_id_and_by_upload(client, done_video, done_mp4):
    edited = client.videos.edit(prompt="make it snow", **by_id(done_video.id))
    assert edited.size == done_video.size and edited.status == "queued"
    uploaded = client.videos.edit(prompt="make it snow", video=("clip.mp4", done_mp4, "video/mp4"))
    assert uploaded.size == done_video.size
    for video in (edited, uploaded):
        assert client.videos.poll(video.id).status == "completed"


def test_extend_reports_the_stitched_total(client, done_video, tmp_path):
    extended = client.videos.extend(prompt="it sails on", seconds="4", **by_id(done_video.id))
    assert extended.seconds == "8"
    assert client.videos.poll(extended.id).status == "completed"
    path = tmp_path / "long.mp4"
    client.videos.download_content(extended.id).write_to_file(path)
    assert media.probe(path).duration == pytest.approx(8.0, abs=0.07)


def test_delete(client, small):
    video = client.videos.create(prompt="short-lived", **small)
    deleted = client.videos.delete(video.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (video.id, "video.deleted", True)
    with pytest.raises(NotFoundError):
        client.videos.retrieve(video.id)
    with pytest.raises(NotFoundError):
        client.videos.delete(video.id)


def test_same_seed_same_video(client, small):
    made = [
        client.videos.create_and_poll(prompt="a red kite", extra_body={"seed": 7}, **small)
        for _ in range(2)
    ]
    assert [v.moviola["seed"] for v in made] == [7, 7]
    first, second = (client.videos.download_content(v.id).read() for v in made)
    # The same frames; the files differ only in their content credentials (signed apart).
    (first_frames, _), (second_frames, _) = (
        media.decode_frames(io.BytesIO(data)) for data in (first, second)
    )
    assert (first_frames == second_frames).all()


def test_moviola_extras_reach_the_render(client):
    video = client.videos.create_and_poll(
        prompt="a red kite",
        size="128x128",
        seconds="1",
        extra_body={"fps": 8, "num_inference_steps": 1, "negative_prompt": "blur"},
    )
    assert video.status == "completed", video.error
    assert video.moviola["render"]["fps"] == 8 and video.moviola["render"]["steps"] == 1
    assert video.moviola["render"]["frames"] == 8


def test_characters(client, done_mp4, small):
    character = client.videos.create_character(name="Mossy", video=("mossy.mp4", done_mp4))
    assert character.id.startswith("char_") and character.name == "Mossy"
    fetched = client.videos.get_character(character.id)
    assert (fetched.id, fetched.name, fetched.created_at) == (
        character.id,
        "Mossy",
        character.created_at,
    )
    video = client.videos.create(
        prompt="Mossy the teapot waves", extra_body={"characters": [{"id": character.id}]}, **small
    )
    assert video.status == "queued"


def test_the_async_client(server, small):
    async def run():
        async with AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused") as client:
            video = await client.videos.create_and_poll(prompt="async boat", **small)
            listed = await client.videos.list(limit=1)
            return video, listed

    video, listed = asyncio.run(run())
    assert video.status == "completed" and listed.data[0].id == video.id


def test_an_extension_keeps_the_sources_frame_rate(client):
    """Seconds add up only if the continuation plays at the source's rate, not the model's."""
    source = client.videos.create_and_poll(
        prompt="slow", extra_body={"size": "160x96", "seconds": "2", "fps": 8}
    )
    assert source.status == "completed", source.error
    extended = client.videos.extend(
        prompt="on", seconds="4", video=omit, extra_body={"video": {"id": source.id}}
    )
    done = client.videos.poll(extended.id)
    assert done.status == "completed", done.error
    assert done.seconds == "6"
    info = media.probe(io.BytesIO(client.videos.download_content(done.id).read()))
    assert info.fps == 8 and info.frames == 48
