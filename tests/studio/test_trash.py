"""The trash in a browser: delete asks once and moves a video there; "Restore" brings it back
exactly; "Delete forever" removes its files."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from playwright.sync_api import Browser, Page, expect
from tests.studio.test_page_checks import axe_violations

SMALL = {"size": "160x96", "seconds": "1"}


def accessible(browser: Browser, url: str) -> None:
    """axe-core finds nothing on the page at desktop and phone sizes."""
    for width, height in ((1440, 900), (390, 844)):
        # bypass_csp: the Studio allows no inline script, and axe is injected as one.
        context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
        try:
            assert axe_violations(context.new_page(), url) == [], (url, width)
        finally:
            context.close()


def sha256(client, video_id: str, variant: str) -> str:
    return hashlib.sha256(
        client.videos.download_content(video_id, variant=variant).read()
    ).hexdigest()


def test_delete_goes_to_the_trash_and_restore_brings_it_back_exactly(
    studio, page: Page, browser: Browser, artifacts: Path
):
    client = studio.client()
    video = client.videos.create_and_poll(prompt="a glass whale in deep water", **SMALL)
    variants = ("video", "thumbnail", "spritesheet")
    before = {variant: sha256(client, video.id, variant) for variant in variants}

    page.goto(f"{studio.url}/videos/{video.id}")
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Delete video").click()

    assert len(asked) == 1 and "trash" in asked[0]  # asked once
    expect(page).to_have_url(re.compile(r"/library$"))
    expect(page.locator(f".card[data-id='{video.id}']")).to_have_count(0)
    assert video.id not in [v.id for v in client.videos.list(limit=100).data]

    page.get_by_role("link", name="Trash").click()
    row = page.locator(f".trashed[data-id='{video.id}']")
    expect(row).to_contain_text("a glass whale in deep water")
    expect(row).to_contain_text("gone in 7 days")
    expect(row.locator("img")).to_have_js_property("complete", True)
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=artifacts / f"trash-{width}.png")
    accessible(browser, f"{studio.url}/trash")

    row.get_by_role("button", name="Restore").click()
    expect(page.get_by_role("status")).to_contain_text("Restored")
    expect(page.locator(f".trashed[data-id='{video.id}']")).to_have_count(0)
    page.get_by_role("link", name="back in the library").click()
    expect(page.locator("#player")).to_be_visible()
    assert page.locator("#player").evaluate(
        "p => p.readyState >= 1"
        " || new Promise(r => p.addEventListener('loadedmetadata', () => r(true)))"
    )
    assert {variant: sha256(client, video.id, variant) for variant in variants} == before
    assert client.videos.retrieve(video.id).status == "completed"


def test_delete_forever_removes_the_files(studio, page: Page):
    client = studio.client()
    video = client.videos.create_and_poll(prompt="a sandcastle at high tide", **SMALL)
    client.videos.delete(video.id)  # the API's delete: to the trash as well
    folder = studio.data_dir / "blobs" / video.id
    assert folder.is_dir()

    page.goto(f"{studio.url}/trash")
    row = page.locator(f".trashed[data-id='{video.id}']")
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    row.get_by_role("button", name=re.compile("forever")).click()

    assert asked and "cannot be undone" in asked[0]
    expect(page.locator(f".trashed[data-id='{video.id}']")).to_have_count(0)
    assert not folder.exists()
