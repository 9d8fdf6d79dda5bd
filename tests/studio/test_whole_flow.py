"""A creator's whole first session, at desktop and phone sizes, against a real server that
starts with no weights: the first-run card installs the test model, "Make 2" makes two
variations whose cards finish live on the feed, one is favourited and shared with a signed-out
visitor, a queued job is cancelled and retried, and a video goes to the trash and comes back.

It finds controls by their accessible names and labels, as a person (or a screen reader) would,
so that it holds while the layout changes; a card is found by the video id it carries."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Locator, Page, expect
from tests.studio.conftest import STUDIO_ENV

FIRST_RUN = {
    **STUDIO_ENV,
    "MOVIOLA_MODEL_ALIASES": "sora-2=wan2.2-ti2v-5b,sora-2-pro=ltx-2",  # neither installed
    # The test model is about 400 KB: at 100 KB/s its copy takes long enough to watch.
    "MOVIOLA_INSTALL_MAX_BYTES_PER_S": "100000",
}
SIZES: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1440, "height": 900}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}
# A job long enough to keep the one worker busy, so the next ones wait in the queue.
BUSY = {"prompt": "a very slow heron", "model": "tiny", "size": "160x96", "seconds": "1"}
BUSY_STEPS = {"num_inference_steps": 500}
# Set on the feed before the renders finish: still there after, so nothing reloaded the page.
MARKER = "window.flowMarker"
# The card's thumbnail has loaded. It loads lazily, so it is scrolled to; and it is looked up
# afresh each time, so a card redrawn meanwhile cannot leave it holding a detached one.
SHOWS_THUMBNAIL = """id => {
  const thumbnail = document.querySelector(`[data-id="${id}"] img`);
  thumbnail?.scrollIntoView({block: "center"});
  return Boolean(thumbnail?.complete && thumbnail.naturalWidth);
}"""


@dataclass
class Flow:
    """One size's tab, the folder its screenshots go to, and the script errors it saw."""

    page: Page
    browser: Browser
    size: str
    folder: Path
    errors: list[str] = field(default_factory=list)
    taken: int = 0

    def shot(self, step: str) -> None:
        self.taken += 1
        self.page.screenshot(path=self.folder / f"flow-{self.size}-{self.taken:02d}-{step}.png")

    def fresh_context(self) -> BrowserContext:
        return self.browser.new_context(**SIZES[self.size])


@pytest.fixture(params=sorted(SIZES))
def flow(request: pytest.FixtureRequest, browser: Browser, artifacts: Path) -> Iterator[Flow]:
    size = request.param
    context = browser.new_context(**SIZES[size])
    context.set_default_timeout(20_000)
    tab = context.new_page()
    running = Flow(tab, browser, size, artifacts)
    tab.on("pageerror", lambda err: running.errors.append(str(err)))
    yield running
    context.close()
    assert not running.errors, f"script errors on the page: {running.errors}"


def fill(page: Page, prompt: str) -> None:
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Exact size (width×height)").fill("160x96")
    page.get_by_label("Duration (seconds)").fill("1")


def confirm_once(page: Page) -> list[str]:
    """Accept the next confirmation dialog, keeping what it asked."""
    asked: list[str] = []

    def answer(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", answer)
    return asked


def card(page: Page, video_id: str) -> Locator:
    return page.locator(f"[data-id='{video_id}']")


def plays(player: Locator) -> float:
    """Start the player (muted, as autoplay allows) and return the duration it plays."""
    player.evaluate(
        "p => p.readyState >= 1 || new Promise(r => p.addEventListener('loadedmetadata', r))"
    )
    player.evaluate("p => { p.muted = true; return p.play() }")
    player.page.wait_for_function("p => p.currentTime > 0", arg=player.element_handle())
    return player.evaluate("p => p.duration")


def test_first_run_to_trash_and_back(flow: Flow, make_server: Any) -> None:
    page = flow.page
    studio = make_server(env=FIRST_RUN).start()
    client = studio.client()

    # First run: no weights, so the home page offers to install the test model.
    page.goto(studio.url + "/")
    onboarding = page.get_by_role("region", name="Install a model to start")
    expect(onboarding).to_be_visible()
    flow.shot("first-run")
    onboarding.get_by_role("button", name="Install tiny").click()
    expect(onboarding.get_by_role("progressbar")).to_be_visible()
    expect(onboarding).to_contain_text(re.compile(r"KB of [\d.]+ KB"), timeout=120_000)
    flow.shot("installing")
    expect(page.get_by_role("status").filter(has_text="tiny is installed")).to_be_visible(
        timeout=120_000
    )
    expect(page.get_by_label("Model", exact=True)).to_have_value("tiny")
    flow.shot("installed")

    # "Make 2" while the worker is busy: both variations wait in the queue.
    blocker = client.videos.create(**BUSY, extra_body=BUSY_STEPS)
    fill(page, "two paper lanterns over a river")
    page.get_by_role("button", name="Make 2").click()
    expect(page).to_have_url(re.compile(r"/videos/video_\w+"))
    first = page.url.split("/videos/")[1].split("?")[0]
    variations = client.videos.retrieve(first).model_extra["moviola"]["variations"]
    assert len(variations) == 2 and first in variations
    second = next(v for v in variations if v != first)

    # The feed shows them queued, then finished, live: the page is never reloaded.
    page.goto(studio.url + "/")
    for video_id in variations:
        expect(card(page, video_id)).to_contain_text("queued")
    page.evaluate(f"{MARKER} = 'still here'")
    card(page, first).scroll_into_view_if_needed()  # cards stay put while their jobs wait
    flow.shot("feed-queued")
    client.videos.delete(blocker.id)  # cancelled, and out of the way
    for video_id in variations:
        expect(card(page, video_id)).to_contain_text("completed", timeout=60_000)
        # The live card's bar goes with it once the finished card has replaced it.
        expect(card(page, video_id).get_by_role("progressbar")).to_have_count(0)
        page.wait_for_function(SHOWS_THUMBNAIL, arg=video_id)
    expect(card(page, blocker.id)).not_to_contain_text("in progress")  # gone, and said so
    assert page.evaluate(MARKER) == "still here"
    page.wait_for_function(SHOWS_THUMBNAIL, arg=first)  # scrolled back to, for the picture
    flow.shot("feed-done")

    # Favourite one, on its card; the video page says so too.
    favourite = card(page, first).get_by_role("button", name="Favourite")
    expect(favourite).to_have_attribute("aria-pressed", "false")
    favourite.click()
    expect(favourite).to_have_attribute("aria-pressed", "true")
    assert page.evaluate(MARKER) == "still here"  # toggled in place
    flow.shot("favourited")
    page.goto(f"{studio.url}/videos/{first}")
    expect(page.get_by_role("button", name="Favourite")).to_have_attribute("aria-pressed", "true")

    # Share it: a signed-out visitor's read-only page plays it.
    page.locator("summary").filter(has_text=re.compile(r"^Share$")).click()  # the Share tab
    page.get_by_role("button", name="Share", exact=True).click()
    link = page.get_by_role("textbox", name=re.compile(r"^Share link")).input_value()
    assert link.startswith(f"{studio.url}/s/")
    flow.shot("shared")
    visitor = flow.fresh_context()
    try:
        watching = visitor.new_page()
        watching.goto(link)
        expect(watching.get_by_role("heading", level=1)).to_have_text(
            "two paper lanterns over a river"
        )
        assert plays(watching.get_by_label("The video")) == pytest.approx(1.0, abs=0.1)
        expect(watching.get_by_role("navigation")).to_have_count(0)  # nothing else of the Studio
        watching.screenshot(path=flow.folder / f"flow-{flow.size}-visitor.png")
    finally:
        visitor.close()

    # Cancel a job while it waits in the queue; "Edit & retry" and "Retry" bring it back.
    blocker = client.videos.create(**BUSY, extra_body=BUSY_STEPS)
    page.goto(studio.url + "/")
    fill(page, "a comet over snowy hills")
    page.get_by_role("button", name="Create video").click()
    expect(page).to_have_url(re.compile(r"/videos/video_\w+"))
    waiting = page.url.split("/videos/")[1].split("?")[0]
    asked = confirm_once(page)
    page.get_by_role("button", name="Cancel", exact=True).click()
    expect(page.get_by_role("heading", name="Cancelled")).to_be_visible()
    assert asked and "cancelled" in asked[0]
    flow.shot("cancelled")
    client.videos.delete(blocker.id)
    page.get_by_role("link", name="Edit & retry").click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a comet over snowy hills")
    page.go_back()
    page.get_by_role("button", name="Retry", exact=True).click()
    expect(page.get_by_label("The video")).to_be_visible(timeout=60_000)
    again = page.url.split("/videos/")[1].split("?")[0]
    assert again != waiting
    assert client.videos.retrieve(again).prompt == "a comet over snowy hills"
    flow.shot("retried")

    # Delete a video (asked once), then restore it from the trash.
    page.goto(f"{studio.url}/videos/{second}")
    asked = confirm_once(page)
    page.get_by_role("button", name="Delete video").click()
    expect(page).not_to_have_url(re.compile(second))
    assert len(asked) == 1 and "trash" in asked[0]
    assert second not in [v.id for v in client.videos.list(limit=100).data]
    page.goto(studio.url + "/trash")
    flow.shot("trash")
    page.get_by_role("button", name=re.compile(r"^Restore “two paper lanterns")).click()
    expect(page.get_by_role("status")).to_contain_text("Restored")
    page.get_by_role("link", name="back in the library").click()
    expect(page).to_have_url(re.compile(second))
    assert plays(page.get_by_label("The video")) == pytest.approx(1.0, abs=0.1)
    assert client.videos.retrieve(second).status == "completed"
    flow.shot("restored")
