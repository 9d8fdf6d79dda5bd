"""The LoRA picker on Create, in a real Chromium: the library's LoRAs for the chosen model, each
with a scale, reach the video; "try again" keeps them; a refusal shows beside the picker."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from moviola.engine.lora_library import LoraLibrary, library_folder


@pytest.fixture(scope="module")
def library(studio, tiny_loras):
    lib = LoraLibrary(library_folder(studio.data_dir))
    lib.add(tiny_loras["diffusers"], "watercolour")
    lib.add(tiny_loras["tiny-ltx"], "film-grain")
    return lib


def fill(page: Page, base: str, model: str) -> None:
    page.goto(base + "/create")
    page.get_by_label("Prompt", exact=True).fill("a lantern on a pier")
    page.get_by_label("Model", exact=True).select_option(model)
    page.get_by_label("Exact size (width×height)").fill("160x96")
    page.get_by_label("Duration (seconds)").fill("1")


def test_the_picker_shows_the_loras_of_the_chosen_model(studio, library, page: Page, artifacts):
    fill(page, studio.url, "tiny")
    watercolour = page.get_by_role("checkbox", name="watercolour")
    expect(watercolour).to_be_visible()
    expect(page.get_by_role("checkbox", name="film-grain")).to_be_hidden()
    page.get_by_label("Model", exact=True).select_option("tiny-ltx")
    expect(page.get_by_role("checkbox", name="film-grain")).to_be_visible()
    expect(watercolour).to_be_hidden()
    page.get_by_label("Model", exact=True).select_option("tiny")
    expect(watercolour).to_be_visible()


def test_a_chosen_lora_at_its_scale_reaches_the_video(studio, library, page: Page, artifacts):
    fill(page, studio.url, "tiny")
    page.get_by_role("checkbox", name="watercolour").check()
    page.get_by_label("Scale of watercolour").fill("0.6")
    page.screenshot(path=artifacts / "loras-01-create.png", full_page=True)
    page.get_by_role("button", name="Create video").click()
    expect(page).to_have_url(re.compile(r"/videos/video_[0-9a-f]+"))
    expect(page.locator("#player")).to_be_visible(timeout=90_000)
    expect(page.locator("dl").first).to_contain_text("watercolour × 0.6")
    page.screenshot(path=artifacts / "loras-02-video.png", full_page=True)

    video_id = page.url.rsplit("/", 1)[-1].split("?")[0]
    page.goto(f"{studio.url}/create?from={video_id}")  # "try again" starts from its settings
    expect(page.get_by_role("checkbox", name="watercolour")).to_be_checked()
    expect(page.get_by_label("Scale of watercolour")).to_have_value("0.6")


def test_a_refused_lora_is_shown_beside_the_picker(studio, library, tiny_loras, page: Page):
    library.add(tiny_loras["other"], "fleeting")
    fill(page, studio.url, "tiny")
    page.get_by_role("checkbox", name="fleeting").check()
    library.remove("fleeting")  # gone from the library before the form is sent
    page.get_by_role("button", name="Create video").click()
    expect(page.locator("#loras-error")).to_contain_text("no LoRA named 'fleeting'")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a lantern on a pier")
