"""Variations in the Studio: "Make 2 / Make 4" on Create, "Vary" on a finished video, the group
on the video page; and the last-frame drop beside the start image."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect


def dropped(zone: str, name: str, color: str) -> str:
    """A script that drops a 160×96 picture of one colour on the drop zone `zone`."""
    return f"""async () => {{
  const canvas = document.createElement('canvas');
  canvas.width = 160; canvas.height = 96;
  const pen = canvas.getContext('2d');
  pen.fillStyle = '{color}'; pen.fillRect(0, 0, 160, 96);
  const blob = await new Promise(done => canvas.toBlob(done, 'image/png'));
  const files = new DataTransfer();
  files.items.add(new File([blob], '{name}', {{type: 'image/png'}}));
  document.getElementById('{zone}').dispatchEvent(
    new DragEvent('drop', {{dataTransfer: files, bubbles: true, cancelable: true}}));
}}"""


def fill(page: Page, prompt: str, seconds: str = "1") -> None:
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Exact size (width×height)").fill("160x96")
    page.get_by_label("Duration (seconds)").fill(seconds)


def test_make_two_on_create_shows_both_in_one_group(page: Page, studio, artifacts):
    page.goto(studio.url + "/create")
    fill(page, "two kites")
    page.get_by_role("button", name="Make 2").click()
    expect(page).to_have_url(re.compile(r"/videos/video_\w+\?created=1"))
    group = page.locator("section.group")
    expect(group.locator("li")).to_have_count(2)
    expect(group.get_by_text("this one")).to_be_visible()
    first = page.url.split("/videos/")[1].split("?")[0]
    api = studio.client().videos.retrieve(first).model_extra["moviola"]
    assert api["variations"][0] == first and len(api["variations"]) == 2
    # The other one is a link to its own page, which shows the same group.
    group.get_by_role("link").click()
    expect(page.locator("section.group li")).to_have_count(2)
    expect(page.locator("#player")).to_be_visible(timeout=60_000)
    page.screenshot(path=artifacts / "60-variations.png", full_page=True)


def test_vary_makes_a_new_group_of_the_same_request(page: Page, studio):
    client = studio.client()
    video = client.videos.create_and_poll(
        prompt="a lantern drifts", size="160x96", seconds="1", extra_body={"seed": 9}
    )
    assert video.status == "completed"
    page.goto(f"{studio.url}/videos/{video.id}")
    expect(page.locator("section.group")).to_have_count(0)  # made alone
    page.locator("summary", has_text="Vary").click()
    page.get_by_role("button", name="Vary ×2").click()
    expect(page.locator("section.group li")).to_have_count(2)
    new = page.url.split("/videos/")[1]
    made = client.videos.retrieve(new)
    assert made.prompt == "a lantern drifts" and made.size == video.size
    details = made.model_extra["moviola"]
    assert details["group_id"] and video.id not in details["variations"]
    seeds = [
        client.videos.retrieve(i).model_extra["moviola"]["seed"] for i in details["variations"]
    ]
    assert seeds[1] == seeds[0] + 1


def test_a_last_frame_is_dropped_beside_the_start_image(page: Page, studio):
    page.goto(studio.url + "/create")
    page.evaluate(dropped("drop", "dawn.png", "#d9480f"))
    page.evaluate(dropped("last-drop", "dusk.png", "#1c3d8f"))
    expect(page.locator("#image-preview")).to_be_visible()
    expect(page.locator("#last_frame-preview")).to_be_visible()
    fill(page, "dawn to dusk", seconds="0.3")
    page.get_by_label("Model").select_option("sora-2")  # tiny: no last frame
    page.get_by_role("button", name="Create video").click()
    expect(page.locator("#last_frame-error")).to_contain_text("cannot end on a given frame")
    # Both pictures are still chosen after the refusal: pick a model made for two frames.
    assert page.locator("#last_frame").evaluate("input => input.files[0].name") == "dusk.png"
    assert page.locator("#image").evaluate("input => input.files[0].name") == "dawn.png"
    page.get_by_label("Model").select_option("tiny-flf2v")
    page.get_by_role("button", name="Create video").click()
    expect(page.locator("#player")).to_be_visible(timeout=60_000)
    expect(page.locator("#facts")).to_contain_text("the first and the last")
