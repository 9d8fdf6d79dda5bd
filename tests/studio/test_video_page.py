"""The video page around the video: a sticky looping player, the actions right under it, the
facts and credentials folded, lineage with pictures, and downloads named after the prompt."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from moviola.studio.downloads import short_id

DESKTOP = {"width": 1440, "height": 900}
# An image's width once loaded (0: it did not load).
LOADED_WIDTH = (
    "i => i.complete ? i.naturalWidth : new Promise(r => i.onload = () => r(i.naturalWidth))"
)
ACTIONS = ("Remix", "Extend", "Edit", "Vary", "Add sound", "Share", "Download")


@pytest.fixture(scope="module")
def made(studio, small):
    """A finished video and a finished remix of it (its lineage has two pictures)."""
    client = studio.client()
    boat = client.videos.create_and_poll(prompt="A paper boat on a pond", **small)
    remix = client.videos.remix(boat.id, prompt="the paper boat in the rain")
    remix = client.videos.poll(remix.id)
    assert boat.status == remix.status == "completed"
    return boat, remix


@pytest.fixture
def desktop(browser: Browser):
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


def test_the_player_loops_and_stays_in_view_as_the_page_scrolls(studio, made, desktop: Page):
    _, remix = made
    desktop.goto(f"{studio.url}/videos/{remix.id}")
    player = desktop.locator("#player")
    expect(player).to_have_attribute("loop", "")
    # It plays on its own, silently: its controls unmute it.
    desktop.wait_for_function("() => document.getElementById('player').currentTime > 0")
    assert player.evaluate("p => p.muted && p.hasAttribute('controls')")

    desktop.get_by_text("Details", exact=True).click()  # a longer info column
    desktop.mouse.move(1200, 600)
    desktop.mouse.wheel(0, 700)
    desktop.wait_for_function("() => window.scrollY > 300")
    box = player.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= DESKTOP["height"]


def test_asking_for_less_motion_keeps_the_player_still(studio, made, browser: Browser):
    context = browser.new_context(viewport=DESKTOP, reduced_motion="reduce")
    try:
        page = context.new_page()
        page.goto(f"{studio.url}/videos/{made[0].id}")
        player = page.locator("#player")
        player.evaluate("p => p.readyState >= 1 || new Promise(r => p.onloadedmetadata = r)")
        assert player.evaluate("p => p.paused && p.currentTime === 0 && !p.muted")
    finally:
        context.close()


def test_a_portrait_video_is_not_letterboxed(studio, desktop: Page):
    tall = studio.client().videos.create_and_poll(prompt="a lighthouse", size="96x160", seconds="1")
    desktop.goto(f"{studio.url}/videos/{tall.id}")
    box = desktop.locator("#player").bounding_box()
    assert box is not None and box["width"] / box["height"] == pytest.approx(96 / 160, abs=0.02)


def test_the_actions_sit_right_under_the_player(studio, made, desktop: Page, artifacts: Path):
    boat, _ = made
    desktop.goto(f"{studio.url}/videos/{boat.id}")
    bar = desktop.locator(".action-bar")
    player_box = desktop.locator("#player").bounding_box()
    assert player_box is not None
    for name in ACTIONS:
        box = bar.locator("summary", has_text=name).bounding_box()
        assert box is not None and player_box["y"] + player_box["height"] <= box["y"], name
        assert box["y"] + box["height"] < DESKTOP["height"], f"{name} is below the fold"
    favourite = bar.get_by_role("button", name="Favourite").bounding_box()
    assert favourite is not None and favourite["y"] + favourite["height"] < DESKTOP["height"]
    desktop.screenshot(path=artifacts / "video-page-1440.png")

    # One form at a time opens under the bar.
    desktop.locator("summary", has_text="Remix").click()
    expect(desktop.get_by_label("New prompt")).to_be_visible()
    desktop.locator("summary", has_text="Extend").click()
    expect(desktop.get_by_label("What happens next")).to_be_visible()
    expect(desktop.get_by_label("New prompt")).to_be_hidden()
    desktop.screenshot(path=artifacts / "video-page-1440-extend.png")


def test_the_actions_are_reachable_on_a_phone(studio, made, phone: Page, artifacts: Path):
    boat, _ = made
    phone.goto(f"{studio.url}/videos/{boat.id}")
    phone.screenshot(path=artifacts / "video-page-390.png")
    phone.locator("summary", has_text="Download").tap()
    expect(phone.get_by_role("link", name="MP4")).to_be_visible()
    phone.locator("summary", has_text="Share").tap()
    expect(phone.get_by_label("A new link works for")).to_be_visible()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the page is wider than the phone"
    phone.screenshot(path=artifacts / "video-page-390-share.png", full_page=True)


def test_facts_and_timings_are_folded_behind_a_summary(studio, made, desktop: Page):
    boat, _ = made
    desktop.goto(f"{studio.url}/videos/{boat.id}")
    expect(desktop.locator("h1")).to_have_text("A paper boat on a pond")
    expect(desktop.locator("#summary-line")).to_contain_text(f"{boat.model} · 160x96 · 1 s · seed")
    timing = desktop.locator("#facts dt", has_text="denoising time")
    expect(timing).to_be_hidden()
    desktop.get_by_text("Details", exact=True).click()
    expect(timing).to_be_visible()
    expect(desktop.locator("#facts")).to_contain_text(re.compile(r"\d+\.\d\d s"))


def test_the_credentials_are_one_line_that_opens(studio, made, desktop: Page):
    boat, _ = made
    desktop.goto(f"{studio.url}/videos/{boat.id}")
    summary = desktop.locator(".credentials summary")
    expect(summary).to_have_text(re.compile(r"^Content credentials: \w+, signed by .+"))
    line = summary.evaluate("s => parseFloat(getComputedStyle(s).lineHeight) || 24")
    box = summary.bounding_box()
    assert box is not None and box["height"] < 1.5 * line + 12  # one line (and its padding)
    signer = desktop.locator(".credentials dt", has_text="signer")
    expect(signer).to_be_hidden()
    summary.click()
    expect(signer).to_be_visible()


def test_the_lineage_shows_each_video_with_its_picture(studio, made, desktop: Page):
    _, remix = made
    desktop.goto(f"{studio.url}/videos/{remix.id}")
    tree = desktop.locator(".lineage .tree")
    pictures = tree.locator("img")
    expect(pictures).to_have_count(2)
    for i in range(2):
        pictures.nth(i).scroll_into_view_if_needed()
        assert pictures.nth(i).evaluate(LOADED_WIDTH) > 0
    expect(tree.locator("[aria-current]")).to_contain_text("the paper boat in the rain")
    expect(tree.get_by_role("link")).to_contain_text("A paper boat on a pond")


def test_a_download_is_named_after_its_prompt(studio, made, desktop: Page):
    boat, _ = made
    desktop.goto(f"{studio.url}/videos/{boat.id}")
    desktop.locator("summary", has_text="Download").click()
    with desktop.expect_download() as download:
        desktop.get_by_role("link", name="MP4").click()
    assert download.value.suggested_filename == f"a-paper-boat-on-a-pond-{short_id(boat.id)}.mp4"

    thumbnail = httpx.get(f"{studio.url}/videos/{boat.id}/file/thumbnail?download=1")
    assert thumbnail.headers["content-disposition"] == (
        f'attachment; filename="a-paper-boat-on-a-pond-{short_id(boat.id)}-thumbnail.webp"'
    )
    played = httpx.get(f"{studio.url}/videos/{boat.id}/file/video")
    assert played.headers["content-disposition"].startswith("inline;")


def test_a_prompt_beyond_ascii_is_named_in_full_too(studio, small):
    video = studio.client().videos.create_and_poll(prompt="Un café à Tōkyō, 東京の夜", **small)
    saved = httpx.get(f"{studio.url}/videos/{video.id}/file/video?download=1")
    full = quote(f"un-café-à-tōkyō-東京の夜-{short_id(video.id)}.mp4", safe="")
    assert saved.headers["content-disposition"] == (
        f'attachment; filename="un-cafe-a-tokyo-{short_id(video.id)}.mp4"; '
        f"filename*=UTF-8''{full}"
    )


def test_the_library_zip_names_its_videos_the_same_way(studio, made):
    boat, remix = made
    packed = httpx.get(f"{studio.url}/library/download", params={"id": [boat.id, remix.id]})
    names = zipfile.ZipFile(io.BytesIO(packed.content)).namelist()
    assert sorted(names) == sorted(
        [
            f"a-paper-boat-on-a-pond-{short_id(boat.id)}.mp4",
            f"the-paper-boat-in-the-rain-{short_id(remix.id)}.mp4",
        ]
    )
