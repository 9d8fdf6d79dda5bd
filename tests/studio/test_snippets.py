""" "Copy as API call" gives code that really makes the same video: run it and compare."""

from __future__ import annotations

import html
import os
import re
import subprocess

import httpx
from openai import omit

from moviola.store.models import Video


def snippet(page: str, name: str) -> str:
    found = re.search(rf'<pre id="snippet-{name}"><code>(.*?)</code></pre>', page, re.S)
    return html.unescape(found[1])


def test_the_sdk_snippet_and_the_curl_command_make_the_same_video(studio, small, monkeypatch):
    client = studio.client()
    made = client.videos.create(
        prompt='a "quoted" prompt, with $dollars',
        extra_body={"seed": 11, "negative_prompt": "fog"},
        **small,
    )
    page = httpx.get(f"{studio.url}/videos/{made.id}").text

    python = snippet(page, "python")
    assert f'base_url="{studio.url}/v1"' in python
    # One key, from one place, in both; a keyless server needs none set.
    assert 'os.environ.get("MOVIOLA_API_KEY"' in python
    assert "${MOVIOLA_API_KEY:-" in snippet(page, "curl")
    monkeypatch.delenv("MOVIOLA_API_KEY", raising=False)
    scope: dict = {}
    exec(python, scope)  # the snippet as a creator would paste it
    again = scope["video"]

    command = snippet(page, "curl")
    output = subprocess.run(
        ["sh", "-c", command],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    by_curl = client.videos.retrieve(re.search(r'"id":\s*"(video_[0-9a-f]+)"', output)[1])

    for copy in (again, by_curl):
        assert copy.id != made.id
        assert (copy.prompt, copy.size, copy.seconds, copy.model) == (
            made.prompt,
            made.size,
            made.seconds,
            made.model,
        )
        assert copy.model_extra["moviola"]["seed"] == 11


def row(server, video_id: str) -> Video:
    with server.sessions()() as session:
        return session.get(Video, video_id)


def same_job(server, made_id: str, copy_id: str) -> None:
    """Same kind, prompt, source and parameters (a remix draws its own seed, whatever is sent)."""
    made, copy = row(server, made_id), row(server, copy_id)
    assert copy.id != made.id
    assert (copy.kind, copy.prompt, copy.model, copy.size, copy.seconds) == (
        made.kind,
        made.prompt,
        made.model,
        made.size,
        made.seconds,
    )
    assert (copy.remixed_from_video_id, copy.source_video_id) == (
        made.remixed_from_video_id,
        made.source_video_id,
    )
    drawn = {"seed"} if made.kind == "remix" else set()
    kept = {k: v for k, v in made.params.items() if k not in drawn}
    assert {k: v for k, v in copy.params.items() if k not in drawn} == kept


def run_both(server, video_id: str) -> list[str]:
    """Run the video page's SDK snippet and curl command; the ids of what they made."""
    page = httpx.get(f"{server.url}/videos/{video_id}").text
    scope: dict = {}
    exec(snippet(page, "python"), scope)
    output = subprocess.run(
        ["sh", "-c", snippet(page, "curl")],
        env=os.environ,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [scope["video"].id, re.search(r'"id":\s*"(video_[0-9a-f]+)"', output)[1]]


def test_remix_edit_and_extend_snippets_make_the_same_job(studio, small, monkeypatch):
    monkeypatch.setenv("MOVIOLA_API_KEY", "unused")  # keyless: any key passes
    client = studio.client()
    source = client.videos.create_and_poll(prompt="a lantern on a pier", **small)
    remix = client.videos.remix(
        source.id, prompt="the lantern in fog", extra_body={"strength": 0.35}
    )
    edit = client.videos.edit(
        prompt="make it winter",
        video=omit,
        extra_body={"video": {"id": source.id}, "seed": 5, "negative_prompt": "people"},
    )
    extend = client.videos.extend(
        prompt="a boat arrives",
        seconds="8",
        video=omit,
        extra_body={"video": {"id": source.id}, "seed": 6},
    )
    assert row(studio, remix.id).params["strength"] == 0.35
    for made in (remix, edit, extend):
        for copy_id in run_both(studio, made.id):
            same_job(studio, made.id, copy_id)


def test_a_storyboard_says_it_has_no_single_api_call(studio, small):
    board = studio.client().videos.create(prompt="x", **small)  # a model and size to copy
    with studio.sessions().begin() as session:
        video = session.get(Video, board.id)
        fake_board = Video(
            id="video_" + "b" * 32,
            seq=10**12,
            kind="storyboard",
            status="failed",  # never picked up by a worker
            error_message="stopped",
            model=video.model,
            engine_model=video.engine_model,
            prompt="one\ntwo",
            seconds="2",
            size=video.size,
            params={"shots": [{"prompt": "one", "seconds": 1}, {"prompt": "two", "seconds": 1}]},
        )
        session.add(fake_board)
    page = httpx.get(f"{studio.url}/videos/{fake_board.id}").text
    for name in ("python", "curl"):
        text = snippet(page, name)
        assert "no single Videos-API call" in text
        # Nothing in it runs: every line of a call is a comment.
        assert all(line.startswith("#") for line in text.splitlines() if "videos" in line)
    with studio.sessions().begin() as session:  # out of the shared server's library again
        session.get(Video, fake_board.id).deleted_at = 1.0
