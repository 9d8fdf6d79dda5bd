"""A creator's whole session in a real browser: create, watch, play, remix, storyboard,
search, delete — against a real server rendering with the tiny model."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

SMALL_SIZE = "160x96"
# Every percentage the live progress shows, kept across the reload that brings the player.
RECORD_PROGRESS = """
new MutationObserver(() => {
  const shown = document.querySelector('[data-job] [data-field=percent]');
  if (!shown) return;
  const seen = JSON.parse(sessionStorage.getItem('seen') || '[]');
  if (seen[seen.length - 1] !== shown.textContent) seen.push(shown.textContent);
  sessionStorage.setItem('seen', JSON.stringify(seen));
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def shot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=artifacts / f"{name}.png", full_page=True)


def wait_until_made(page: Page, artifacts: Path, name: str) -> str:
    """On a new video's page: the live progress reaches 100% and the player replaces it."""
    video_id = page.locator("article[data-video]").get_attribute("data-video")
    expect(page.locator("#player")).to_be_visible(timeout=60_000)
    shot(page, artifacts, name)
    return video_id


def test_create_watch_remix_storyboard_search_delete(make_server, page: Page, artifacts):
    studio = make_server().start()  # a library of its own: the counts below are exact
    base = studio.url
    page.add_init_script(RECORD_PROGRESS)

    # Create from a prompt.
    page.goto(base + "/create")
    shot(page, artifacts, "01-create")
    page.get_by_label("Prompt", exact=True).fill("a lighthouse in a storm at night")
    page.get_by_label("Exact size (width×height)").fill(SMALL_SIZE)
    page.get_by_label("Duration (seconds)").fill("1")
    page.get_by_label("Seed", exact=True).fill("7")
    page.get_by_role("button", name="Create video").click()

    # The job appears at once, and its progress is pushed live until it is done.
    expect(page).to_have_url(re.compile(r"/videos/video_[0-9a-f]+"))
    first = wait_until_made(page, artifacts, "02-video")
    assert "100%" in page.evaluate("() => JSON.parse(sessionStorage.getItem('seen') || '[]')")

    # The player plays it: seekable from the content endpoint.
    player = page.locator("#player")
    page.wait_for_function(
        "() => { const v = document.getElementById('player'); return v.readyState >= 2 }",
        timeout=20_000,
    )
    assert player.evaluate("v => v.duration") > 0
    player.evaluate("v => { v.muted = true; return v.play() }")
    page.wait_for_function("() => document.getElementById('player').currentTime > 0")
    player.evaluate("v => { v.currentTime = v.duration / 2 }")
    page.wait_for_function("() => !document.getElementById('player').seeking")
    expect(page.locator("#seed-value")).to_have_text("7")
    expect(page.locator("#snippet-python")).to_contain_text("client.videos.create(")
    expect(page.locator(".credentials")).to_be_visible()

    # Remix it: the remix's lineage shows both, and walks back to the original.
    page.locator("summary", has_text="Remix").click()
    page.get_by_label("New prompt").fill("the same lighthouse at dawn")
    page.get_by_label("Strength (0–1: how far it may move from this video)").fill("0.5")
    page.get_by_role("button", name="Remix", exact=True).click()
    remix = wait_until_made(page, artifacts, "03-remix")
    assert remix != first
    tree = page.locator(".lineage .tree")
    expect(tree).to_contain_text("a lighthouse in a storm at night")
    expect(tree).to_contain_text("the same lighthouse at dawn")
    expect(page.locator("#facts")).to_contain_text("0.5")  # the strength asked for
    tree.get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(first))
    expect(page.locator(".lineage .tree")).to_contain_text("the same lighthouse at dawn")

    # A storyboard of three shots renders as one video, each shot kept.
    page.goto(base + "/storyboard")
    page.get_by_label("Prompt", exact=True).fill("a red kite rises")
    page.get_by_role("button", name="Add a shot").click()
    page.get_by_role("button", name="Add a shot").click()
    prompts = page.locator("textarea[name=shot_prompt]")
    expect(prompts).to_have_count(3)
    prompts.nth(1).fill("the kite loops over the dunes")
    prompts.nth(2).fill("the kite lands in the sand")
    for index in range(3):
        page.locator("input[name=shot_seconds]").nth(index).fill("1")
    page.get_by_label("Exact size (width×height)").fill(SMALL_SIZE)
    page.get_by_label("Seed", exact=True).fill("3")
    shot(page, artifacts, "04-storyboard")
    page.get_by_role("button", name="Render storyboard").click()
    board = wait_until_made(page, artifacts, "05-storyboard-video")
    expect(page.locator(".shots-list li")).to_have_count(3)
    expect(page.get_by_role("link", name="Download shot 3")).to_be_visible()
    duration = page.locator("#player").evaluate(
        "v => new Promise(done => v.readyState >= 1 ? done(v.duration)"
        " : v.addEventListener('loadedmetadata', () => done(v.duration)))"
    )
    assert duration > 2  # three one-second shots in one video

    # The library shows everything, newest first; search finds the storyboard by its words.
    page.goto(base + "/library")
    expect(page.locator(".card")).to_have_count(3)
    expect(page.locator(".card").first).to_have_attribute("data-id", board)
    page.locator(".card .thumb[data-preview]").first.hover()
    expect(page.locator(".card .thumb video")).to_have_count(1)
    shot(page, artifacts, "06-library")
    page.get_by_label("Search", exact=True).fill("kite dunes")
    page.get_by_role("button", name="Show").click()
    expect(page.locator(".card")).to_have_count(1)
    expect(page.locator(".card")).to_have_attribute("data-id", board)
    shot(page, artifacts, "07-search")

    # Delete it: gone from the library, into the trash (its files kept there, to restore).
    folder = studio.data_dir / "blobs" / board
    assert folder.is_dir()
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_label(re.compile("Select “a red kite")).check()
    page.get_by_role("button", name="Delete selected").click()
    # Back to the search it was deleted from, which finds nothing now.
    expect(page).to_have_url(re.compile(r"/\?q=kite\+dunes"))
    expect(page.get_by_text("Nothing matches.")).to_be_visible()
    page.goto(base + "/")
    expect(page.locator(f".card[data-id='{board}']")).to_have_count(0)
    expect(page.locator(".card")).to_have_count(2)
    assert folder.is_dir()
    page.goto(base + "/trash")
    expect(page.locator(f".trashed[data-id='{board}']")).to_have_count(1)

    page.goto(base + "/queue")
    expect(page.locator("table.queue tbody tr")).to_have_count(2)
    shot(page, artifacts, "08-queue")
    page.goto(base + "/settings")
    expect(page.locator("body")).to_contain_text("tiny")
    shot(page, artifacts, "09-settings")
