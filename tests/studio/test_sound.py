"""Sound in the Studio, in a real Chromium: a video with sound plays it, the library marks it,
and "Add sound" gives a silent video a soundtrack while keeping its picture."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

PLAYED = """() => {
  const v = document.getElementById('player');
  return v.currentTime > 0.3 || v.ended;
}"""


def create(page: Page, base: str, prompt: str, model: str, sound: str = "auto") -> str:
    page.goto(base + "/create")
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Model").select_option(model)
    page.get_by_label("Sound", exact=True).select_option(sound)
    page.get_by_label("Exact size (width×height)").fill("160x96")
    page.get_by_label("Duration (seconds)").fill("1")
    page.get_by_role("button", name="Create video").click()
    expect(page).to_have_url(re.compile(r"/videos/video_[0-9a-f]+"))
    expect(page.locator("#player")).to_be_visible(timeout=90_000)
    return page.locator("article[data-video]").get_attribute("data-video")


def test_a_video_with_sound_plays_it_and_the_library_marks_it(studio, page: Page, artifacts):
    base = studio.url
    page.goto(base + "/create")
    page.get_by_label("Model").select_option("tiny-ltx2")
    expect(page.locator("#audio-hint")).to_contain_text("makes its sound with the picture")
    page.get_by_label("Model").select_option("tiny")
    expect(page.locator("#audio-hint")).to_contain_text("makes no sound")
    page.screenshot(path=artifacts / "sound-01-create.png", full_page=True)

    video_id = create(page, base, "thunder over a harbour", "tiny-ltx2")
    expect(page.locator("#sound-fact")).to_contain_text("AAC, 48.0 kHz, stereo")
    expect(page.locator("#sound-fact")).to_contain_text("made by the model")
    page.locator("#player").click()  # a person's click: sound may play
    page.evaluate("() => document.getElementById('player').play()")
    page.wait_for_function(PLAYED, timeout=20_000)
    decoded = page.evaluate("() => document.getElementById('player').webkitAudioDecodedByteCount")
    assert decoded > 0
    page.screenshot(path=artifacts / "sound-02-video.png", full_page=True)

    page.goto(base + "/library")
    card = page.locator(f'li.card[data-id="{video_id}"]')
    expect(card.locator(".sound")).to_have_text("♪ sound")
    page.screenshot(path=artifacts / "sound-03-library.png", full_page=True)


def test_add_sound_gives_a_silent_video_a_soundtrack(studio, page: Page, artifacts: Path):
    base = studio.url
    silent_id = create(page, base, "a kite over a beach", "tiny")
    expect(page.locator("#sound-fact")).to_have_text("none")
    page.locator("summary", has_text="Add sound").click()
    page.get_by_label("What it sounds like").fill("wind and distant waves")
    expect(page.get_by_label("Made by")).to_have_value("")  # the soundtrack model
    page.get_by_role("button", name="Add sound").click()
    expect(page).not_to_have_url(re.compile(silent_id))
    expect(page.locator("#player")).to_be_visible(timeout=90_000)
    expect(page.locator("#sound-fact")).to_contain_text("a soundtrack made from the prompt")
    expect(page.locator(".tree")).to_contain_text("edit")
    page.screenshot(path=artifacts / "sound-04-added.png", full_page=True)
