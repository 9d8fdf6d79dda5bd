"""Variations: `n` videos of one create, with consecutive seeds, in one group, through the real
`openai` SDK (`extra_body`), JSON and multipart alike."""

from __future__ import annotations

import time

import httpx
import openai
import pytest


def finished(client, video_id: str, limit_s: float = 120.0):
    deadline = time.monotonic() + limit_s
    while True:
        video = client.videos.retrieve(video_id)
        if video.status in ("completed", "failed") or time.monotonic() > deadline:
            return video
        time.sleep(0.1)


def moviola(video) -> dict:
    return video.model_extra["moviola"]


def test_n_makes_that_many_videos_with_consecutive_seeds_in_one_group(client, small):
    first = client.videos.create(prompt="a kite over dunes", **small, extra_body={"n": 3})
    group = moviola(first)["group_id"]
    ids = moviola(first)["variations"]
    assert group and len(ids) == 3 and ids[0] == first.id and len(set(ids)) == 3

    videos = [finished(client, video_id) for video_id in ids]
    assert [v.status for v in videos] == ["completed"] * 3, [v.error for v in videos]
    seeds = [moviola(v)["seed"] for v in videos]
    assert seeds == [seeds[0], seeds[0] + 1, seeds[0] + 2]
    for video in videos:
        assert moviola(video)["group_id"] == group
        assert moviola(video)["variations"] == ids
        assert video.prompt == "a kite over dunes" and video.size == first.size
    frames = [client.videos.download_content(v.id).read() for v in videos]
    assert len(set(frames)) == 3  # three seeds, three different videos


def test_a_given_seed_is_the_first_of_the_group(http, small):
    answer = http.post("/v1/videos", json={"prompt": "rain", **small, "n": 2, "seed": 41})
    assert answer.status_code == 200, answer.text
    ids = answer.json()["moviola"]["variations"]
    assert answer.json()["moviola"]["seed"] == 41
    second = http.get(f"/v1/videos/{ids[1]}").json()
    assert second["moviola"]["seed"] == 42 and second["moviola"]["group_id"]


def test_one_video_has_no_group(client, small):
    video = client.videos.create(prompt="a lone heron", **small, extra_body={"n": 1})
    assert moviola(video)["group_id"] is None and moviola(video)["variations"] is None


def count(client) -> int:
    return len(client.videos.list(limit=100).data)


@pytest.mark.parametrize("n", [5, 0, -1, "two", 2.5])
def test_n_outside_one_to_four_is_400_and_nothing_is_queued(client, small, n):
    before = count(client)
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.create(prompt="too many", **small, extra_body={"n": n})
    assert err.value.body["param"] == "n"
    assert count(client) == before


def test_n_is_taken_by_create_only(client, done_video):
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.remix(done_video.id, prompt="again", extra_body={"n": 2})
    assert err.value.body["param"] == "n"


def test_the_queue_limit_counts_every_variation(make_server, small):
    """With room for two, three variations are refused whole (429, nothing queued); two fit."""
    server = make_server(env={"MOVIOLA_WORKERS": "0", "MOVIOLA_MAX_QUEUED_PER_KEY": "2"}).start()
    client = server.client()
    with pytest.raises(openai.RateLimitError) as err:
        client.videos.create(prompt="three", **small, extra_body={"n": 3})
    assert "retry-after" in err.value.response.headers
    assert count(client) == 0
    assert not any((server.data_dir / "blobs").glob("video_*"))  # no upload written either

    two = client.videos.create(prompt="two", **small, extra_body={"n": 2})
    assert len(moviola(two)["variations"]) == 2 and count(client) == 2
    with pytest.raises(openai.RateLimitError):
        client.videos.create(prompt="one more", **small)
    assert count(client) == 2


def test_variations_from_an_image_each_start_from_it(server, small, make_png):
    """Multipart with a file, as the SDK sends it: every variation keeps its own copy."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.post(
            "/v1/videos",
            data={"prompt": "the kite lifts", **small, "n": "2"},
            files={"input_reference": ("kite.png", make_png(), "image/png")},
        )
    assert answer.status_code == 200, answer.text
    ids = answer.json()["moviola"]["variations"]
    client = server.client()
    assert [finished(client, i).status for i in ids] == ["completed", "completed"]
    kept = [server.data_dir / "blobs" / i / "input.img" for i in ids]
    assert all(path.read_bytes() == make_png() for path in kept)
