"""At phone width (390×844) every page fits the screen and the creator can still make a video."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect


def fits(page: Page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= 390")


def test_every_page_fits_a_phone_and_a_video_can_be_made(make_server, phone: Page, artifacts):
    server = make_server().start()
    phone.goto(server.url + "/create")
    assert fits(phone)
    phone.screenshot(path=artifacts / "phone-create.png", full_page=True)
    phone.get_by_label("Prompt", exact=True).fill("rain on a tin roof")
    phone.get_by_label("Exact size (width×height)").fill("96x160")
    phone.get_by_label("Duration (seconds)").fill("1")
    phone.get_by_role("button", name="Create video").tap()
    expect(phone).to_have_url(re.compile(r"/videos/video_"))
    expect(phone.locator("#player")).to_be_visible(timeout=60_000)
    assert fits(phone)
    phone.screenshot(path=artifacts / "phone-video.png", full_page=True)
    for path in ("/library", "/storyboard", "/queue", "/settings"):
        phone.goto(server.url + path)
        assert fits(phone), f"{path} is wider than the phone"
        phone.screenshot(path=artifacts / f"phone-{path[1:]}.png", full_page=True)


def test_the_studio_is_usable_from_the_keyboard(page: Page, studio):
    page.goto(studio.url + "/create")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")  # to the main content, past the navigation
    page.keyboard.press("Tab")
    expect(page.get_by_label("Prompt", exact=True)).to_be_focused()
    page.keyboard.type("typed without a mouse")
    labelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
            .filter(c => !(c.labels && c.labels.length) && !c.getAttribute('aria-label'))
            .map(c => c.name || c.id)"""
    )
    assert labelled == []
