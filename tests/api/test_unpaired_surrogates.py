"""Half a character is not text: a string holding a lone UTF-16 surrogate is refused with a 400
naming the field, on every route that takes a body, before anything tries to store it.

JSON carries one as the escape `\\ud800` (valid JSON); `json.dumps` writes a Python string
holding one exactly that way, so these bodies are what a careless client sends.
"""

from __future__ import annotations

import json

import pytest

LONE = "\ud800"


def post_json(http, path: str, body: dict):
    raw = json.dumps(body).encode()
    assert b"\\ud800" in raw  # the escape itself goes over the wire
    return http.post(path, content=raw, headers={"content-type": "application/json"})


def refused(answer, param: str | None) -> None:
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["param"], error["code"]) == (param, "invalid_text")
    assert "surrogate" in error["message"]


CREATE = {"prompt": "a paper boat", "size": "160x96", "seconds": "1"}


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"prompt": f"a boat {LONE}"}, "prompt"),
        ({"model": LONE}, "model"),
        ({"seconds": LONE}, "seconds"),
        ({"size": f"160x96{LONE}"}, "size"),
        ({"negative_prompt": LONE}, "negative_prompt"),
        ({"input_reference": f"https://example.com/{LONE}.png"}, "input_reference"),
        ({"input_reference": {"image_url": f"data:image/png,{LONE}"}}, "input_reference.image_url"),
        ({"input_reference": {"file_id": LONE}}, "input_reference.file_id"),
        ({"characters": [{"id": f"char_{LONE}"}]}, "characters.0.id"),
        ({f"extra{LONE}": "x"}, None),  # a field name
    ],
)
def test_create(http, fields, param):
    refused(post_json(http, "/v1/videos", {**CREATE, **fields}), param)


@pytest.mark.parametrize("field", ["prompt", "negative_prompt"])
def test_remix(http, done_video, field):
    body = {"prompt": "again", field: f"x{LONE}"}
    refused(post_json(http, f"/v1/videos/{done_video.id}/remix", body), field)


@pytest.mark.parametrize("path", ["/v1/videos/edits", "/v1/videos/extensions"])
@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"prompt": LONE}, "prompt"),
        ({"model": LONE}, "model"),
        ({"negative_prompt": LONE}, "negative_prompt"),
        ({"video": {"id": f"video_{LONE}"}}, "video.id"),
        ({"video": f"video_{LONE}"}, "video"),
    ],
)
def test_edit_and_extend(http, done_video, path, fields, param):
    body = {"prompt": "more", "video": {"id": done_video.id}, **fields}
    refused(post_json(http, path, body), param)


def test_extend_seconds(http, done_video):
    body = {"prompt": "more", "video": {"id": done_video.id}, "seconds": f"4{LONE}"}
    refused(post_json(http, "/v1/videos/extensions", body), "seconds")


@pytest.mark.parametrize(
    ("name", "filename", "param"), [("+2AA-", "c.mp4", "name"), ("Ada", "+2AA-.mp4", "video")]
)
def test_character_multipart(http, done_mp4, name, filename, param):
    # Multipart, as the SDK sends it, in a charset (UTF-7) that can spell a lone surrogate.
    boundary = "b0undary"
    parts = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n{name}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="{filename}"'
            "\r\nContent-Type: video/mp4\r\n\r\n"
        ).encode()
        + done_mp4
        + f"\r\n--{boundary}--\r\n".encode()
    )
    kind = f"multipart/form-data; boundary={boundary}; charset=utf-7"
    answer = http.post("/v1/videos/characters", content=parts, headers={"content-type": kind})
    refused(answer, param)


def test_character_json(http):
    refused(post_json(http, "/v1/videos/characters", {"name": f"Ada {LONE}"}), "name")
