"""API keys, ownership and limits, on a server with keys, small limits and no worker."""

from __future__ import annotations

import base64

import httpx
import pytest
from openai import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    RateLimitError,
    omit,
)


@pytest.fixture
def key(strict):
    """A fresh key per test, so that each starts with an empty queue of its own."""
    return strict.create_key()


def test_requests_need_a_live_key(strict, key, small):
    for api_key in ("unused", "mvk_wrong"):
        with pytest.raises(AuthenticationError) as caught:
            strict.client(api_key).videos.list()
        assert caught.value.code == "invalid_api_key"
    missing = httpx.get(f"{strict.url}/v1/videos")
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
    assert strict.client(key).videos.create(prompt="a boat", **small).status == "queued"


def test_a_key_sees_only_its_own_videos(strict, key, small):
    mine = strict.client(key).videos.create(prompt="a boat", **small)
    other = strict.client(strict.create_key("other"))
    with pytest.raises(NotFoundError):
        other.videos.retrieve(mine.id)
    with pytest.raises(NotFoundError):
        other.videos.download_content(mine.id)
    with pytest.raises(NotFoundError):
        other.videos.delete(mine.id)
    assert mine.id not in [v.id for v in other.videos.list()]
    assert mine.id in [v.id for v in strict.client(key).videos.list()]


def test_too_many_queued_is_429_with_retry_after(strict, key, small):
    client = strict.client(key)
    client.videos.create(prompt="first", **small)
    with pytest.raises(RateLimitError) as caught:
        client.videos.create(prompt="second", **small)
    assert int(caught.value.response.headers["retry-after"]) >= 1
    assert caught.value.code == "rate_limit_exceeded"


def test_unfinished_videos_cannot_be_remixed_or_downloaded(strict, key, small):
    client = strict.client(key)
    queued = client.videos.create(prompt="waiting", **small)
    with pytest.raises(ConflictError) as caught:
        client.videos.remix(queued.id, prompt="again")
    assert caught.value.body["param"] == "video_id"
    with pytest.raises(ConflictError):
        client.videos.download_content(queued.id)
    with pytest.raises(ConflictError):
        client.videos.edit(prompt="more", video=omit, extra_body={"video": {"id": queued.id}})


def test_uploads_over_the_limit_are_413(strict, key, make_png):
    client = strict.client(key)
    limit = 100_000
    # Just past the limit (the file check); far past it (refused while the body streams).
    for size in (limit + 1, 3_000_000):
        with pytest.raises(APIStatusError) as caught:
            client.videos.create(prompt="a", input_reference=("big.png", b"\x89PNG" + b"0" * size))
        assert caught.value.status_code == 413
        assert caught.value.body["code"] == "too_large"
    # A declared length over the limit is refused before the body is read.
    response = httpx.post(
        f"{strict.url}/v1/videos",
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        content=b"{" + b" " * 3_000_000 + b"}",
    )
    assert response.status_code == 413
    # Under the limit, the same request is fine.
    assert client.videos.create(prompt="a", input_reference=make_png(), size="160x96")


def test_a_data_url_over_the_limit_is_413(strict, key):
    url = "data:image/png;base64," + base64.b64encode(b"0" * 100_001).decode()
    with pytest.raises(APIStatusError) as caught:
        strict.client(key).videos.create(
            prompt="a", extra_body={"input_reference": {"image_url": url}}
        )
    assert caught.value.status_code == 413


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:1/x.png",
        "http://localhost/x.png",
        "http://[::1]/x.png",
        "http://10.0.0.8/x.png",
        "http://169.254.169.254/latest/meta-data",
    ],
)
def test_an_image_url_on_this_machine_or_a_private_network_is_not_fetched(strict, key, url):
    with pytest.raises(BadRequestError) as caught:
        strict.client(key).videos.create(
            prompt="a", extra_body={"input_reference": {"image_url": url}}
        )
    assert caught.value.body["param"] == "input_reference.image_url"
    assert "private address" in caught.value.body["message"]


def test_bad_request_still_needs_no_worker(strict, key):
    with pytest.raises(BadRequestError):
        strict.client(key).videos.create(prompt="a", size="1x1")
