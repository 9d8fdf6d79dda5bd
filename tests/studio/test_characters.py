"""Characters in the Studio, in a real browser: made from a clip with their frames shown, then
picked on Create with reference images, and rendered into a video."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from playwright.sync_api import Page, expect

from moviola import media
from moviola.store.models import Video


def portrait(cx: int) -> np.ndarray:
    """A drawn head and shoulders on a plain wall: NudeNet reports it as a face."""
    r, cy = 50, 110
    image = Image.new("RGB", (320, 240), (90, 120, 160))
    draw = ImageDraw.Draw(image)
    skin = (224, 172, 140)
    draw.ellipse([cx - 2.2 * r, cy + 1.1 * r, cx + 2.2 * r, cy + 4 * r], fill=(40, 60, 120))
    draw.rectangle([cx - 0.35 * r, cy + 0.8 * r, cx + 0.35 * r, cy + 1.4 * r], fill=skin)
    draw.ellipse([cx - 1.05 * r, cy - 1.35 * r, cx + 1.05 * r, cy + 0.2 * r], fill=(60, 40, 20))
    draw.ellipse([cx - 0.8 * r, cy - r, cx + 0.8 * r, cy + r], fill=skin)
    for side in (-1, 1):
        x, y = cx + side * 0.35 * r, cy - 0.2 * r
        draw.ellipse([x - 7, y - 4, x + 7, y + 4], fill=(255, 255, 255))
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(40, 30, 20))
    draw.arc([cx - 15, cy + 15, cx + 15, cy + 30], 20, 160, fill=(150, 50, 50), width=3)
    return np.asarray(image.filter(ImageFilter.GaussianBlur(1.5)))


def face_clip(folder: Path) -> Path:
    path = folder / "ada.mp4"
    media.write_mp4(
        np.stack([portrait(120 + 8 * i) for i in range(12)]), path, fps=8, preset="ultrafast"
    )
    return path


def swatch(folder: Path, color: tuple[int, int, int]) -> Path:
    path = folder / f"swatch-{color[0]}.png"
    Image.new("RGB", (64, 80), color).save(path)
    return path


def test_make_a_character_then_put_it_in_a_video(studio, page: Page, artifacts):
    base = studio.url
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        page.goto(base + "/characters")
        expect(page.get_by_role("link", name="Characters")).to_have_attribute(
            "aria-current", "page"
        )
        page.get_by_label("Name").fill("Ada")
        page.get_by_label("Clip").set_input_files(face_clip(folder))
        page.get_by_role("button", name="Create character").click()

        # Back on the page: the new character, with the frames picked from its clip.
        expect(page).to_have_url(re.compile(r"/characters\?made=char_[0-9a-f]+"))
        made = page.locator(".character[data-made]")
        expect(made.get_by_role("heading", name="Ada")).to_be_visible()
        frames = made.locator(".frames img")
        expect(frames).to_have_count(3)
        expect(frames.first).to_have_attribute("alt", re.compile("cropped to the face"))
        page.wait_for_function(
            "() => [...document.querySelectorAll('.character[data-made] .frames img')]"
            ".every(img => img.complete && img.naturalWidth > 0)"
        )
        page.screenshot(path=artifacts / "characters-01-made.png", full_page=True)
        character_id = made.get_attribute("id")

        # A clip that is no video: refused beside its control, with the name kept.
        page.get_by_label("Name").fill("Bo")
        not_video = folder / "bo.mp4"
        not_video.write_bytes(b"not a video")
        page.get_by_label("Clip").set_input_files(not_video)
        page.get_by_role("button", name="Create character").click()
        expect(page.locator("#video-error")).to_be_visible()
        expect(page.get_by_label("Name")).to_have_value("Bo")

        # On Create: pick the character, add two reference images, name it in the prompt.
        page.goto(base + "/create")
        page.get_by_label("Prompt", exact=True).fill("Ada waves from the window")
        page.get_by_label("Exact size (width×height)").fill("160x96")
        page.get_by_label("Duration (seconds)").fill("1")
        page.get_by_role("checkbox", name="Ada").check()
        page.get_by_label("Reference images (optional, up to 3)").set_input_files(
            [swatch(folder, (220, 30, 30)), swatch(folder, (30, 30, 220))]
        )
        expect(page.locator("#reference-previews img")).to_have_count(2)
        page.screenshot(path=artifacts / "characters-02-create.png", full_page=True)
        page.get_by_role("button", name="Create video").click()

    expect(page).to_have_url(re.compile(r"/videos/video_[0-9a-f]+"))
    video_id = page.locator("article[data-video]").get_attribute("data-video")
    expect(page.locator("#player")).to_be_visible(timeout=60_000)
    with studio.sessions()() as session:
        row = session.get(Video, video_id)
    assert row.params["characters"] == [character_id]
    assert row.params["reference_images"] == 2
    page.screenshot(path=artifacts / "characters-03-video.png", full_page=True)


def test_a_prompt_without_the_characters_name_comes_back_with_the_pick_kept(studio, page: Page):
    with tempfile.TemporaryDirectory() as scratch:
        clip = face_clip(Path(scratch)).read_bytes()
    made = studio.client().videos.create_character(name="Cleo", video=("cleo.mp4", clip))
    page.goto(studio.url + "/create")
    page.get_by_label("Prompt", exact=True).fill("a quiet street")
    page.get_by_label("Exact size (width×height)").fill("160x96")
    page.get_by_role("checkbox", name="Cleo").check()
    page.get_by_role("button", name="Create video").click()
    expect(page.locator("#characters-error")).to_contain_text("Cleo")
    expect(page.get_by_role("checkbox", name="Cleo")).to_be_checked()
    assert page.get_by_role("checkbox", name="Cleo").get_attribute("value") == made.id
