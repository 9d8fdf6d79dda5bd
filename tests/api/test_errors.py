"""Refusals arrive as the SDK's exception classes, with the field to blame in `param`."""

from __future__ import annotations

import pytest
from openai import BadRequestError, NotFoundError, omit


def refused(call, error=BadRequestError):
    with pytest.raises(error) as caught:
        call()
    body = caught.value.body
    assert set(body) == {"message", "type", "param", "code"}, body
    return caught.value


@pytest.mark.parametrize(
    ("size", "why"), [("161x96", "odd side"), ("big", "WIDTHxHEIGHT"), ("8x8", "out of range")]
)
def test_bad_size(client, size, why):
    err = refused(lambda: client.videos.create(prompt="a boat", size=size))
    assert err.param == "size" and why in err.message


@pytest.mark.parametrize("seconds", ["0", "abc", "-4", "inf", "nan", "1e308"])
def test_bad_seconds(client, seconds):
    assert refused(lambda: client.videos.create(prompt="a boat", seconds=seconds)).param == (
        "seconds"
    )


def test_prompt_limits(client):
    too_long = refused(lambda: client.videos.create(prompt="x" * 32_001))
    assert too_long.param == "prompt" and "32,000" in too_long.message
    assert refused(lambda: client.videos.create(prompt="   ")).param == "prompt"


def test_unknown_model(client):
    err = refused(lambda: client.videos.create(prompt="a boat", model="sora-9"))
    assert (err.param, err.code) == ("model", "model_not_found")


def test_a_model_this_server_has_not_downloaded(client):
    err = refused(lambda: client.videos.create(prompt="a boat", model="wan2.1-t2v-1.3b"))
    assert (err.param, err.code) == ("model", "model_not_downloaded")
    assert "moviola models pull wan2.1-t2v-1.3b" in err.message


def test_unknown_ids(client):
    for call in (
        lambda: client.videos.retrieve("video_nope"),
        lambda: client.videos.download_content("video_nope"),
        lambda: client.videos.remix("video_nope", prompt="x"),
        lambda: client.videos.get_character("char_nope"),
    ):
        refused(call, NotFoundError)


def test_bad_moviola_extras(client):
    assert (
        refused(lambda: client.videos.create(prompt="a boat", extra_body={"seed": "abc"})).param
        == "seed"
    )
    assert (
        refused(
            lambda: client.videos.create(prompt="a boat", extra_body={"num_inference_steps": 0})
        ).param
        == "num_inference_steps"
    )


def test_corrupt_and_unsupported_uploads(client, make_png):
    broken = make_png()[:60]
    err = refused(lambda: client.videos.create(prompt="a", input_reference=("a.png", broken)))
    assert err.param == "input_reference"
    err = refused(lambda: client.videos.create(prompt="a", input_reference=b"not an image"))
    assert err.param == "input_reference"
    err = refused(lambda: client.videos.edit(prompt="a", video=("v.mp4", b"\x00" * 500)))
    assert err.param == "video"
    err = refused(lambda: client.videos.create_character(name="Mo", video=("v.mp4", make_png())))
    assert err.param == "video"


def test_file_ids_are_refused_with_the_way_out(client):
    err = refused(
        lambda: client.videos.create(
            prompt="a", extra_body={"input_reference": {"file_id": "file_123"}}
        )
    )
    assert err.param == "input_reference.file_id" and "image_url" in err.message


def test_characters_must_exist_and_be_named(client, done_mp4):
    character = client.videos.create_character(name="Pip", video=("pip.mp4", done_mp4))
    unnamed = refused(
        lambda: client.videos.create(
            prompt="a boat", extra_body={"characters": [{"id": character.id}]}
        )
    )
    assert unnamed.param == "characters" and "Pip" in unnamed.message
    missing = refused(
        lambda: client.videos.create(prompt="Pip", extra_body={"characters": [{"id": "char_x"}]}),
        NotFoundError,
    )
    assert missing.param == "characters"
    three = [{"id": character.id}] * 3
    assert refused(
        lambda: client.videos.create(prompt="Pip", extra_body={"characters": three})
    ).param == ("characters")


def test_extension_lengths(client, done_video):
    err = refused(
        lambda: client.videos.extend(
            prompt="more", seconds="5", video=("v.mp4", b"x"), extra_body={}
        )
    )
    assert err.param == "seconds"


def test_list_arguments(client, done_video):
    empty = client.videos.list(limit=0)  # OpenAI's spec allows 0–100
    assert (empty.data, empty.has_more) == ([], True)
    assert refused(lambda: client.videos.list(limit=101)).param == "limit"
    assert refused(lambda: client.videos.list(order="sideways")).param == "order"
    assert refused(lambda: client.videos.list(after="video_nope"), NotFoundError).param == "after"


def test_refused_requests_change_nothing(server, client, done_video, make_png):
    """Neither a row nor a file appears for any refused request."""
    import time

    from sqlalchemy import func, select

    from moviola.store.models import Video

    sessions = server.sessions()

    def state():
        with sessions() as session:
            rows = session.execute(select(func.count()).select_from(Video)).scalar()
            busy = session.execute(
                select(func.count())
                .select_from(Video)
                .where(Video.status.in_(("queued", "in_progress")))
            ).scalar()
        folders = sorted(p.name for p in (server.data_dir / "blobs").iterdir())
        return rows, busy, folders

    deadline = time.monotonic() + 60
    while state()[1] and time.monotonic() < deadline:  # let earlier tests' jobs finish
        time.sleep(0.2)
    before = state()
    bad_calls = [
        lambda: client.videos.create(prompt="a", size="161x96"),
        lambda: client.videos.create(prompt="a", seconds="0"),
        lambda: client.videos.create(prompt="x" * 32_001),
        lambda: client.videos.create(prompt="a", model="sora-9"),
        lambda: client.videos.create(prompt="a", input_reference=("x.png", b"not an image")),
        lambda: client.videos.create(prompt="a", input_reference=make_png(), size="8x8"),
        lambda: client.videos.remix("video_nope", prompt="x"),
        lambda: client.videos.extend(
            prompt="a", seconds="5", video=omit, extra_body={"video": {"id": done_video.id}}
        ),
        lambda: client.videos.edit(prompt="a", video=("v.mp4", b"\0" * 500)),
    ]
    for call in bad_calls:
        with pytest.raises((BadRequestError, NotFoundError)):
            call()
    assert state() == before
