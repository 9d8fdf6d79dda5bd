"""Keys never hide a library: the first key adopts what was made without one, and the API
answers for those videos as for any of the key's own. Left unadopted (`--no-adopt`), they are
out of everyone's reach while keys exist — every request needs a key then — until a key
adopts them."""

from __future__ import annotations

import os
import subprocess
import time

import openai
import pytest
from tests.conftest import MOVIOLA

SMALL = {"size": "160x96", "seconds": "1"}


def keys(server, *args: str) -> subprocess.CompletedProcess:
    """`moviola keys --data-dir … ARGS`, as an operator runs it on the server."""
    done = subprocess.run(
        [MOVIOLA, "keys", "--data-dir", str(server.data_dir), *args],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "MOVIOLA_DATA_DIR"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    if args[0] == "create":
        keys_seen(server)
    return done


def keys_seen(server, within_s: float = 10.0) -> None:
    """Wait for the server to notice that keys exist (it remembers the answer for a second)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            server.client().models.list()
        except openai.AuthenticationError:
            return
        assert time.monotonic() < deadline, "the server never noticed the new key"
        time.sleep(0.1)


@pytest.fixture
def keyless(make_server):
    """A server with no worker (jobs stay queued) and a video made without a key."""
    server = make_server(env={"MOVIOLA_WORKERS": "0"}).start()
    video = server.client().videos.create(prompt="made before any key", **SMALL)
    return server, video


def test_the_first_key_adopts_the_keyless_library(keyless):
    server, video = keyless

    created = keys(server, "create", "first")

    assert "adopted 1 video made without a key" in created.stderr
    client = server.client(created.stdout.strip())
    assert [v.id for v in client.videos.list().data] == [video.id]
    assert client.videos.retrieve(video.id).prompt == "made before any key"
    with pytest.raises(openai.AuthenticationError):  # keys exist: keyless use has ended
        server.client().videos.list()
    # A second key is a key of its own: it adopts nothing, and sees none of the first's.
    second = keys(server, "create", "second")
    assert "adopted" not in second.stderr
    with pytest.raises(openai.NotFoundError):
        server.client(second.stdout.strip()).videos.retrieve(video.id)


def test_a_key_made_with_no_adopt_leaves_them_out_of_reach_until_adopted(keyless):
    server, video = keyless

    created = keys(server, "create", "first", "--no-adopt")

    assert "adopted" not in created.stderr
    client = server.client(created.stdout.strip())
    assert client.videos.list().data == []
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)
    with pytest.raises(openai.AuthenticationError):
        server.client().videos.retrieve(video.id)

    adopted = keys(server, "adopt", created.stdout.strip()[:12])  # by the prefix `list` shows

    assert "adopted 1 video into key_" in adopted.stdout
    assert client.videos.retrieve(video.id).id == video.id
    assert [v.id for v in client.videos.list().data] == [video.id]
