"""The home page as a feed, in a real Chromium: the prompt bar on top of cards shaped like
their videos, previews that play muted on hover, favourites, filters and collections."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

SIZES = {"wide": "160x96", "tall": "96x160", "square": "96x96"}


@pytest.fixture(scope="module")
def feed(server_class, tmp_path_factory):
    """A server with a wide, a tall and a square silent video and one with sound."""
    server = server_class(tmp_path_factory.mktemp("feed") / "data").start()
    client = server.client()
    made = {
        name: client.videos.create_and_poll(
            model="tiny", prompt=f"a {name} shot of a lake", seconds="1", size=size
        ).id
        for name, size in SIZES.items()
    }
    made["sound"] = client.videos.create_and_poll(
        model="tiny-ltx2", prompt="rain on a tin roof", seconds="1", size="160x96"
    ).id
    yield server, made
    server.stop()


def card(page: Page, video_id: str):
    return page.locator(f"li.card[data-id='{video_id}']")


def test_home_shows_the_prompt_bar_on_top_of_cards_shaped_like_their_videos(
    feed, page: Page, artifacts
):
    server, made = feed
    page.goto(server.url + "/")
    prompt = page.get_by_label("Prompt", exact=True)
    expect(prompt).to_be_visible()
    expect(page.locator(".card")).to_have_count(4)
    # The prompt bar is above the feed.
    assert prompt.bounding_box()["y"] < page.locator("#cards").bounding_box()["y"]
    boxes = {name: card(page, made[name]).locator(".thumb").bounding_box() for name in SIZES}
    assert boxes["wide"]["width"] > boxes["wide"]["height"] * 1.3
    assert boxes["tall"]["height"] > boxes["tall"]["width"] * 1.3
    assert abs(boxes["square"]["width"] - boxes["square"]["height"]) < 2
    # No words over the picture: the caption is below it.
    caption = card(page, made["wide"]).locator(".caption").bounding_box()
    assert caption["y"] >= boxes["wide"]["y"] + boxes["wide"]["height"]
    page.set_viewport_size({"width": 1440, "height": 900})
    page.screenshot(path=artifacts / "feed-desktop.png", full_page=True)
    # /library is the same page.
    page.goto(server.url + "/library")
    expect(page.get_by_label("Prompt", exact=True)).to_be_visible()
    expect(page.locator(".card")).to_have_count(4)


def test_the_feed_on_a_phone(feed, phone: Page, artifacts):
    server, _ = feed
    phone.goto(server.url + "/")
    expect(phone.locator(".card")).to_have_count(4)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the page scrolls sideways"
    phone.locator("#cards").scroll_into_view_if_needed()
    phone.screenshot(path=artifacts / "feed-phone.png", full_page=True)


def test_hovering_a_card_plays_its_video_muted_and_looping(feed, page: Page):
    server, made = feed
    page.goto(server.url + "/")
    thumb = card(page, made["tall"]).locator(".thumb")
    expect(thumb.locator("video")).to_have_count(0)
    thumb.hover()
    video = thumb.locator("video")
    expect(video).to_have_count(1)
    page.wait_for_function(
        "v => !v.paused && v.currentTime > 0", arg=video.element_handle(), timeout=20_000
    )
    assert video.evaluate("v => v.muted && v.loop")
    assert video.get_attribute("src").endswith(f"/videos/{made['tall']}/file/video")
    page.mouse.move(0, 0)  # away: the preview goes, the thumbnail is back
    expect(thumb.locator("video")).to_have_count(0)


def test_no_preview_plays_for_those_who_ask_for_less_motion(feed, browser):
    server, made = feed
    context = browser.new_context(reduced_motion="reduce")
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        thumb = card(page, made["wide"]).locator(".thumb")
        thumb.hover()
        page.wait_for_timeout(300)  # time for a preview to appear, were there one
        expect(thumb.locator("video")).to_have_count(0)
    finally:
        context.close()


def test_favourite_toggles_in_place_persists_and_filters(feed, page: Page):
    server, made = feed
    page.goto(server.url + "/")
    button = card(page, made["square"]).get_by_role("button", name="Favourite", exact=True)
    expect(button).to_have_attribute("aria-pressed", "false")
    button.click()
    expect(button).to_have_attribute("aria-pressed", "true")
    page.reload()
    expect(button).to_have_attribute("aria-pressed", "true")
    page.get_by_label("Favourites only").check()
    page.get_by_role("button", name="Show").click()
    expect(page.locator(".card")).to_have_count(1)
    expect(page.locator(".card")).to_have_attribute("data-id", made["square"])
    button.click()  # and off again
    expect(button).to_have_attribute("aria-pressed", "false")
    page.reload()
    expect(page.locator(".card")).to_have_count(0)
    expect(page.get_by_text("Nothing matches.")).to_be_visible()


def test_the_audio_filter_tells_videos_with_sound_from_silent_ones(feed, page: Page):
    server, made = feed
    page.goto(server.url + "/")
    page.get_by_label("Audio").select_option("with")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"sound=with"))
    expect(page.locator(".card")).to_have_count(1)
    expect(page.locator(".card")).to_have_attribute("data-id", made["sound"])
    page.get_by_label("Audio").select_option("without")
    page.get_by_role("button", name="Show").click()
    expect(page.locator(".card")).to_have_count(3)
    expect(card(page, made["sound"])).to_have_count(0)


def test_selected_videos_go_into_a_new_collection_and_the_filter_shows_them(
    feed, page: Page, artifacts
):
    server, made = feed
    page.goto(server.url + "/")
    page.get_by_label("Select “a wide shot of a lake”").check()
    page.get_by_label("Select “a tall shot of a lake”").check()
    page.get_by_label("Put in").select_option(label="New collection…")
    page.get_by_label("New collection name").fill("Lakes")
    page.locator("#bulk").scroll_into_view_if_needed()
    page.screenshot(path=artifacts / "feed-selecting.png")
    page.get_by_role("button", name="Add to collection").click()
    expect(page).to_have_url(server.url + "/")
    page.get_by_label("Collection", exact=True).select_option(label="Lakes")
    page.get_by_role("button", name="Show").click()
    ids = page.locator(".card").evaluate_all("cards => cards.map(c => c.dataset.id)")
    assert sorted(ids) == sorted([made["wide"], made["tall"]])
    # The collection is a project like any other.
    page.goto(server.url + "/projects")
    expect(page.get_by_role("link", name="Lakes")).to_be_visible()


def test_favourite_works_without_scripts(feed):
    server, made = feed
    with httpx.Client(base_url=server.url) as browser:
        home = browser.get("/")
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', home.text)[1]
        answer = browser.post(
            f"/videos/{made['sound']}/favourite",
            data={"csrf": token, "on": "1", "next": "/?sound=with"},
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/?sound=with"
        shown = browser.get("/?favourites=1").text
        assert made["sound"] in shown and made["wide"] not in shown
        refused = browser.post(
            f"/videos/{made['sound']}/favourite", data={"csrf": token, "on": "2"}
        )
        assert refused.status_code == 400
        missing = browser.post("/videos/video_0000/favourite", data={"csrf": token, "on": "1"})
        assert missing.status_code == 404
        browser.post(f"/videos/{made['sound']}/favourite", data={"csrf": token, "on": "0"})
