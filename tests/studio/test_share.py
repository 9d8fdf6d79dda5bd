"""Sharing: an unlisted, signed link to a finished video's read-only page, for visitors who are
not signed in, even on a server with keys; revoked, expired, forged or trashed, it is a 404."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import update
from tests.studio.test_trash import accessible

from moviola.store.models import ShareLink

SMALL = {"size": "160x96", "seconds": "1"}


@pytest.fixture(scope="module")
def keyed(server_class, tmp_path_factory):
    """A server with an API key: its Studio asks every visitor to sign in."""
    server = server_class(tmp_path_factory.mktemp("share") / "data").start()
    secret = server.create_key("sam")
    video = server.client(secret).videos.create_and_poll(prompt="a kite over the dunes", **SMALL)
    assert video.status == "completed"
    yield server, secret, video
    server.stop()


def sign_in(page: Page, server, secret: str, path: str) -> None:
    page.goto(server.url + path)
    page.get_by_label("API key").fill(secret)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))


def make_link(page: Page, expires: str = "never") -> str:
    """ "Share" on the video page; the new link, as "Copy link" puts it on the clipboard."""
    tab = page.locator("#share-tab")
    if not tab.evaluate("details => details.open"):
        tab.locator("summary").click()
    page.get_by_label("A new link works for").select_option(expires)
    page.get_by_role("button", name="Share", exact=True).click()
    fresh = page.locator(".share-link.fresh")
    expect(fresh).to_have_count(1)
    fresh.get_by_role("button", name="Copy link").click()
    expect(fresh.get_by_role("button", name="Copied")).to_be_visible()
    return page.evaluate("navigator.clipboard.readText()")


@pytest.fixture
def owner(browser: Browser, keyed):
    """The signed-in owner's tab, which may use the clipboard."""
    server, _, _ = keyed
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


def test_a_link_opens_signed_out_and_serves_the_video_with_ranges(
    keyed, owner: Page, browser: Browser, artifacts: Path
):
    server, secret, video = keyed
    sign_in(owner, server, secret, f"/videos/{video.id}")
    link = make_link(owner)
    assert link.startswith(f"{server.url}/s/")

    for width, height in ((1440, 900), (390, 844)):
        visitor = browser.new_context(viewport={"width": width, "height": height})
        page = visitor.new_page()
        page.goto(link)
        expect(page.locator("h1")).to_have_text("a kite over the dunes")
        expect(page.get_by_role("link", name="Download")).to_be_visible()
        played = page.locator("#player").evaluate(
            "p => p.readyState >= 1 ? p.duration"
            " : new Promise(r => p.addEventListener('loadedmetadata', () => r(p.duration)))"
        )
        assert played == pytest.approx(1.0, abs=0.1)
        expect(page.get_by_role("navigation")).to_have_count(0)  # nothing else of the Studio
        page.screenshot(path=artifacts / f"shared-{width}.png")
        visitor.close()
    accessible(browser, link)
    accessible(browser, f"{server.url}/s/nothing")

    whole = server.client(secret).videos.download_content(video.id).read()
    with httpx.Client() as visitor:  # no cookie, no key
        page = visitor.get(link)
        assert page.status_code == 200 and "noindex" in page.headers["x-robots-tag"]
        part = visitor.get(link + "/video", headers={"range": "bytes=10-99"})
        assert part.status_code == 206 and part.content == whole[10:100]
        saved = visitor.get(link + "/video?download=1")
        assert saved.content == whole
        assert saved.headers["content-disposition"].startswith("attachment")
        assert "kite-over-the-dunes" in saved.headers["content-disposition"]
        assert visitor.get(f"{server.url}/videos/{video.id}").status_code == 303  # sign in


def test_revoked_expired_forged_and_trashed_links_are_404(keyed, owner: Page):
    server, secret, video = keyed
    sign_in(owner, server, secret, f"/videos/{video.id}")
    revoked, expiring, trashed = (make_link(owner, e) for e in ("never", "1", "7"))
    assert len({revoked, expiring, trashed}) == 3
    assert httpx.get(revoked).status_code == 200

    row = owner.locator(".share-link").filter(has=owner.locator(f"input[value='{revoked}']"))
    row.get_by_role("button", name="Revoke").click()
    expect(owner.locator(f".share-link input[value='{revoked}']")).to_have_count(0)

    expiring_id = "share_" + expiring.rsplit("/", 1)[1].split(".")[0]
    with server.sessions().begin() as session:
        session.execute(
            update(ShareLink).where(ShareLink.id == expiring_id).values(expires_at=time.time() - 1)
        )
    token = trashed.rsplit("/", 1)[1]
    forged = [
        trashed[: -len(token)] + token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        f"{server.url}/s/{'0' * 32}.{token.split('.')[1]}",  # another id, the same signature
        f"{server.url}/s/nothing",
    ]
    for dead in [revoked, expiring, *forged]:
        for url in (dead, dead + "/video"):
            answer = httpx.get(url)
            assert answer.status_code == 404, url
            assert answer.headers["content-type"].startswith("text/html")
            assert "does not lead to a video" in answer.text

    client = server.client(secret)
    client.videos.delete(video.id)  # to the trash: its links stop working
    assert httpx.get(trashed).status_code == 404
    owner.goto(server.url + "/trash")
    owner.locator(f".trashed[data-id='{video.id}']").get_by_role("button", name="Restore").click()
    expect(owner.get_by_role("status")).to_contain_text("Restored")
    assert httpx.get(trashed).status_code == 200  # restored: the link works again
