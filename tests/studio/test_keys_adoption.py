"""Keys never hide a library: the Studio's first key takes over the videos made without one
(it asks, ticked by default), and signing in with it shows them."""

from __future__ import annotations

import re
from pathlib import Path

import openai
import pytest
from playwright.sync_api import Page, expect
from tests.api.test_key_adoption import keys_seen

SMALL = {"size": "160x96", "seconds": "1"}


def test_a_keyless_video_is_the_first_keys_after_sign_in(make_server, page: Page, artifacts: Path):
    server = make_server(env={"MOVIOLA_WORKERS": "0"}).start()
    keyless = server.client()
    made = [keyless.videos.create(prompt=f"before keys, number {i}", **SMALL) for i in (1, 2)]

    page.goto(server.url + "/settings")
    offer = page.get_by_label("Move the 2 videos made without a key to this key")
    expect(offer).to_be_checked()
    page.get_by_label("New key's name").fill("me")
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.locator("#keys-h").scroll_into_view_if_needed()
        page.screenshot(path=artifacts / f"first-key-{width}.png")
    page.get_by_role("button", name="Create key").click()

    expect(page.locator("#adopted")).to_contain_text("2 videos")
    secret = page.locator("#new-secret").input_value()
    keys_seen(server)  # within the second the server remembers "no keys" for
    page.goto(server.url + "/library")
    page.get_by_label("API key").fill(secret)
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(re.compile(r"/library$"))
    for video in made:
        expect(page.locator(f".card[data-id='{video.id}']")).to_have_count(1)
    page.goto(f"{server.url}/videos/{made[0].id}")
    expect(page.locator("h1.prompt")).to_have_text("before keys, number 1")
    # The API agrees: the key lists and reads them; keyless use has ended.
    client = server.client(secret)
    assert sorted(v.id for v in client.videos.list().data) == sorted(v.id for v in made)
    with pytest.raises(openai.AuthenticationError):  # keyless use has ended
        keyless.videos.list()


def test_unticked_the_videos_stay_without_a_key(make_server, page: Page):
    server = make_server(env={"MOVIOLA_WORKERS": "0"}).start()
    video = server.client().videos.create(prompt="kept apart", **SMALL)

    page.goto(server.url + "/settings")
    page.get_by_label("Move the 1 video made without a key to this key").uncheck()
    page.get_by_label("New key's name").fill("fresh start")
    page.get_by_role("button", name="Create key").click()

    expect(page.locator("#new-secret")).to_be_visible()
    expect(page.locator("#adopted")).to_have_count(0)
    client = server.client(page.locator("#new-secret").input_value())
    keys_seen(server)
    assert client.videos.list().data == []
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)
