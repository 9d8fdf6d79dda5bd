""" "Copy as API call" gives code that really makes the same video: run it and compare."""

from __future__ import annotations

import html
import os
import re
import subprocess

import httpx


def snippet(page: str, name: str) -> str:
    found = re.search(rf'<pre id="snippet-{name}"><code>(.*?)</code></pre>', page, re.S)
    return html.unescape(found[1])


def test_the_sdk_snippet_and_the_curl_command_make_the_same_video(studio, small):
    client = studio.client()
    made = client.videos.create(
        prompt='a "quoted" prompt, with $dollars',
        extra_body={"seed": 11, "negative_prompt": "fog"},
        **small,
    )
    page = httpx.get(f"{studio.url}/videos/{made.id}").text

    python = snippet(page, "python")
    assert f'base_url="{studio.url}/v1"' in python
    scope: dict = {}
    exec(python, scope)  # the snippet as a creator would paste it
    again = scope["video"]

    command = snippet(page, "curl")
    output = subprocess.run(
        ["sh", "-c", command],
        env={**os.environ, "MOVIOLA_API_KEY": "unused"},
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
