"""The video page says where the model ran and what each stage took, in a real Chromium."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect


def test_the_video_page_shows_the_placement_and_each_stages_peak(studio, page: Page, artifacts):
    page.goto(studio.url + "/create")
    page.get_by_label("Prompt", exact=True).fill("a lighthouse at dusk")
    page.get_by_label("Model").select_option("tiny")
    page.get_by_label("Exact size (width×height)").fill("160x96")
    page.get_by_label("Duration (seconds)").fill("1")
    page.get_by_role("button", name="Create video").click()
    expect(page.locator("#player")).to_be_visible(timeout=90_000)
    # A CPU keeps everything where it is; the estimate is against this machine's RAM.
    expect(page.locator("#placement-fact")).to_contain_text("resident, VAE untiled")
    expect(page.locator("#placement-fact")).to_contain_text(re.compile(r"estimated peak [\d.]+"))
    denoising = page.locator("dt", has_text="denoising time").locator(
        "xpath=following-sibling::dd[1]"
    )
    expect(denoising).to_have_text(re.compile(r"[\d.]+ s · peak [\d.]+ [KMG]B"))
    page.screenshot(path=Path(artifacts) / "memory-video.png", full_page=True)
