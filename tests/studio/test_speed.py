"""The Speed selector on Create, in a real Chromium: a fast video is made at its distilled steps,
and a model that cannot run fast says so beside the selector."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect


def fill(page: Page, base: str, model: str, speed: str) -> None:
    page.goto(base + "/create")
    page.get_by_label("Prompt", exact=True).fill("a lantern on a pier")
    page.get_by_label("Model").select_option(model)
    page.get_by_label("Speed", exact=True).select_option(speed)
    page.get_by_label("Exact size (width×height)").fill("160x96")
    page.get_by_label("Duration (seconds)").fill("1")


def test_a_fast_video_is_made_at_its_distilled_steps(studio, page: Page, artifacts):
    fill(page, studio.url, "tiny", "fast")
    page.screenshot(path=artifacts / "speed-01-create.png", full_page=True)
    page.get_by_role("button", name="Create video").click()
    expect(page).to_have_url(re.compile(r"/videos/video_[0-9a-f]+"))
    expect(page.locator("#player")).to_be_visible(timeout=90_000)
    facts = page.locator("dl").first
    expect(facts).to_contain_text("speed")
    expect(facts).to_contain_text("fast")
    page.screenshot(path=artifacts / "speed-02-video.png", full_page=True)


def test_fast_on_a_model_without_a_distilled_route_is_refused_beside_the_selector(
    studio, page: Page, artifacts
):
    fill(page, studio.url, "tiny-ltx", "fast")
    page.get_by_role("button", name="Create video").click()
    expect(page.locator("#speed-error")).to_contain_text("no step-distilled LoRA")
    expect(page.get_by_label("Speed", exact=True)).to_have_value("fast")  # kept as chosen
    page.screenshot(path=artifacts / "speed-03-refused.png", full_page=True)
