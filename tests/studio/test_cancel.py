"""Cancel is not delete, in a browser: the Studio asks first, the job stays as a cancelled
record of its request, and "Retry" or "Edit & retry" makes it again."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from tests.studio.conftest import STUDIO_ENV
from tests.studio.test_trash import accessible

SMALL = {"size": "160x96", "seconds": "1"}


@pytest.fixture(scope="module")
def server(server_class, tmp_path_factory):
    """A Studio of its own with one worker, which the tests keep busy on purpose."""
    running = server_class(tmp_path_factory.mktemp("cancel") / "data", STUDIO_ENV).start()
    yield running
    running.stop()


def shots(page: Page, artifacts: Path, name: str) -> None:
    """The page at desktop and phone sizes."""
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=artifacts / f"{name}-{width}.png")


def test_cancel_asks_keeps_a_record_and_retry_renders(
    server, page: Page, browser: Browser, artifacts
):
    client = server.client()
    # The worker busy on a long job, so the next one waits in the queue.
    running = client.videos.create(
        prompt="a very slow heron", extra_body={"num_inference_steps": 500}, **SMALL
    )
    waiting = client.videos.create(
        prompt="a comet over snowy hills",
        extra_body={"seed": 12, "negative_prompt": "clouds"},
        **SMALL,
    )

    page.goto(f"{server.url}/videos/{waiting.id}")
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Cancel").click()
    assert asked and "cancelled" in asked[0]  # it asks first; dismissed, nothing happens
    assert client.videos.retrieve(waiting.id).status == "queued"

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel").click()

    # The same page, now the record of a cancelled request.
    expect(page.get_by_role("heading", name="Cancelled")).to_be_visible()
    expect(page.locator("#facts .badge")).to_have_text("cancelled")
    expect(page.locator("h1.prompt")).to_have_text("a comet over snowy hills")
    shots(page, artifacts, "cancelled-video")
    accessible(browser, page.url)
    on_the_wire = client.videos.retrieve(waiting.id)  # the SDK's statuses: failed, cancelled
    assert (on_the_wire.status, on_the_wire.error.code) == ("failed", "cancelled")

    # The running job too (from the library), so the worker is free for the retry.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{server.url}/library")
    card = page.locator(f".card[data-id='{running.id}']")
    page.once("dialog", lambda dialog: dialog.accept())
    card.get_by_role("button", name="Cancel").click()
    # It stops within a step (its worker sees the request at its next heartbeat).
    deadline = time.monotonic() + 30
    while client.videos.retrieve(running.id).status != "failed":
        assert time.monotonic() < deadline, "the running job did not stop"
        time.sleep(0.2)
    page.reload()
    expect(card.locator(".badge")).to_have_text("cancelled")
    expect(page.locator(f".card[data-id='{waiting.id}'] .badge")).to_have_text("cancelled")

    # "Edit & retry": Create, filled in with its prompt and settings, seed included.
    page.goto(f"{server.url}/videos/{waiting.id}")
    page.get_by_role("link", name="Edit & retry").click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a comet over snowy hills")
    expect(page.locator("#seed")).to_have_value("12")
    expect(page.locator("#negative_prompt")).to_have_value("clouds")

    # "Retry": the same request again, as a new video.
    page.go_back()
    page.get_by_role("button", name="Retry", exact=True).click()
    expect(page.locator("#player")).to_be_visible(timeout=60_000)  # a new video, made
    again = page.locator("article[data-video]").get_attribute("data-video")
    assert again != waiting.id
    made = client.videos.retrieve(again)
    assert (made.prompt, made.size, made.model_extra["moviola"]["seed"]) == (
        "a comet over snowy hills",
        "160x96",
        12,
    )
