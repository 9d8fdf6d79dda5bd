"""The composer: chips that set the size and duration within the chosen model's limits, the
model change that refills them, Ctrl+Enter, the sticky Create on a phone, example and recent
prompts, and style and camera presets (built in, and the creator's own on /settings/presets)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect


@pytest.fixture(scope="module")
def server(server_class, tmp_path_factory):
    """A server of the composer's own: its presets and recent prompts are no other test's."""
    started = server_class(tmp_path_factory.mktemp("composer") / "data").start()
    yield started
    started.stop()


def size_box(page: Page):
    return page.get_by_label("Exact size (width×height)")


def seconds_box(page: Page):
    return page.get_by_label("Duration (seconds)")


def test_chips_set_size_and_duration_within_the_models_limits(page: Page, server, artifacts):
    page.goto(server.url + "/create")
    page.get_by_label("Model").select_option("tiny")
    page.get_by_role("button", name="Portrait 9:16").click()
    expect(size_box(page)).to_have_value("96x160")
    expect(page.get_by_role("button", name="Portrait 9:16")).to_have_attribute(
        "aria-pressed", "true"
    )
    page.get_by_role("button", name="Square").click()
    expect(size_box(page)).to_have_value("128x128")
    page.get_by_role("button", name="2 s").click()
    expect(seconds_box(page)).to_have_value("2")
    expect(page.get_by_role("button", name="2 s")).to_have_attribute("aria-pressed", "true")

    # tiny-flf2v makes one generation between two frames: 33 frames at 16 fps, 2 s at most.
    page.get_by_label("Model").select_option("tiny-flf2v")
    expect(page.get_by_role("button", name="4 s")).to_be_disabled()
    expect(page.get_by_role("button", name="8 s")).to_be_disabled()
    expect(page.get_by_role("button", name="1 s")).to_be_enabled()
    expect(page.locator("#seconds-limits")).to_contain_text("up to 2 s")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.screenshot(path=artifacts / "composer-desktop.png", full_page=True)


def test_changing_the_model_refills_a_size_and_duration_it_cannot_make(page: Page, server):
    page.goto(server.url + "/create")
    page.get_by_label("Model").select_option("tiny")
    size_box(page).fill("1280x720")  # no size of the tiny models
    seconds_box(page).fill("8")
    page.get_by_label("Model").select_option("tiny-flf2v")
    expect(size_box(page)).to_have_value("160x96")  # its own landscape size
    expect(seconds_box(page)).to_have_value("2")  # its longest, below the default 4 s
    expect(page.get_by_role("button", name="Landscape 16:9")).to_have_attribute(
        "aria-pressed", "true"
    )

    size_box(page).fill("96x160")  # one of its own sizes stays as it is
    seconds_box(page).fill("1")
    page.get_by_label("Model").select_option("tiny-ltx")
    expect(size_box(page)).to_have_value("96x160")
    expect(seconds_box(page)).to_have_value("1")


def test_ctrl_enter_in_the_prompt_makes_the_video(page: Page, server):
    page.goto(server.url + "/create")
    page.get_by_label("Prompt", exact=True).fill("a kettle boils on a stove")
    size_box(page).fill("160x96")
    seconds_box(page).fill("1")
    page.get_by_label("Prompt", exact=True).press("Control+Enter")
    expect(page).to_have_url(re.compile(r"/videos/video_\w+\?created=1"))


def test_on_a_phone_the_create_button_is_on_screen_without_scrolling(
    phone: Page, server, artifacts
):
    phone.goto(server.url + "/create")
    button = phone.get_by_role("button", name="Create video")
    expect(button).to_be_visible()
    box = button.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 844
    assert phone.evaluate("() => document.documentElement.scrollWidth <= 390")
    phone.screenshot(path=artifacts / "composer-phone.png")


def test_an_example_fills_the_prompt_and_recent_prompts_come_back(page: Page, server):
    page.goto(server.url + "/create")
    page.get_by_label("Prompt", exact=True).fill("")
    examples = page.get_by_role("group", name="Example prompts")
    expect(examples).to_be_visible()
    first = examples.get_by_role("button").first
    whole = first.get_attribute("data-example")
    first.click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(whole)
    expect(examples).to_be_hidden()  # a prompt is there: no more suggestions

    made = server.client().videos.create_and_poll(
        prompt="a moth circles a porch light", size="160x96", seconds="1"
    )
    assert made.status == "completed"
    page.goto(server.url + "/create")
    recent = page.get_by_role("group", name="Recent prompts")
    recent.get_by_role("button", name="a moth circles a porch light").click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a moth circles a porch light")


def test_a_preset_adds_to_the_prompt_and_the_video_keeps_it(page: Page, server):
    client = server.client()
    prompts = []
    for with_preset in (False, True):
        page.goto(server.url + "/create")
        page.get_by_label("Prompt", exact=True).fill("a harbour at dawn")
        size_box(page).fill("160x96")
        seconds_box(page).fill("1")
        page.get_by_label("Seed", exact=True).fill("7")
        if with_preset:
            page.get_by_role("group", name="Style presets").get_by_role(
                "button", name="Anime"
            ).click()
            expect(page.get_by_label("Prompt", exact=True)).to_have_value(
                "a harbour at dawn, anime style, cel shading, vivid colours, clean line art"
            )
            # Its settings are set, and shown.
            expect(page.get_by_label("Negative prompt")).to_have_value("photorealistic, 3d render")
        page.get_by_role("button", name="Create video").click()
        expect(page).to_have_url(re.compile(r"/videos/video_\w+\?created=1"))
        video_id = page.url.split("/videos/")[1].split("?")[0]
        prompts.append(client.videos.retrieve(video_id).prompt)
    assert prompts[0] == "a harbour at dawn"
    assert (
        prompts[1] == "a harbour at dawn, anime style, cel shading, vivid colours, clean line art"
    )

    # Chosen again, it takes its words back out.
    page.goto(server.url + "/create")
    page.get_by_label("Prompt", exact=True).fill("a harbour at dawn")
    camera = page.get_by_role("group", name="Camera presets")
    camera.get_by_role("button", name="Orbit").click()
    expect(camera.get_by_role("button", name="Orbit")).to_have_attribute("aria-pressed", "true")
    camera.get_by_role("button", name="Orbit").click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a harbour at dawn")


def test_presets_are_added_edited_and_removed_on_their_page(page: Page, server, artifacts):
    page.goto(server.url + "/create")
    page.get_by_role("link", name="Edit presets").click()
    expect(page).to_have_url(re.compile(r"/settings/presets$"))

    add = page.get_by_role("region", name="Add a preset")
    add.get_by_label("Kind").select_option("camera")
    add.get_by_label("Name").fill("Crane up")
    add.get_by_label("Added to the prompt").fill("the camera cranes up to reveal the city")
    add.get_by_label("Steps (optional)").fill("12")
    add.get_by_role("button", name="Add preset").click()
    expect(page.get_by_role("status")).to_have_text("Preset saved.")
    page.reload()
    crane = page.locator("li.preset", has_text="Crane up")
    expect(crane).to_contain_text("the camera cranes up to reveal the city")
    expect(crane).to_contain_text("steps: 12")

    # Edited: a built-in becomes the creator's own version.
    page.locator("li.preset", has_text="Cinematic").get_by_text("Edit Cinematic").click()
    cinematic = page.locator("li.preset", has_text="Cinematic")
    cinematic.get_by_label("Added to the prompt").fill("cinematic, golden hour, 35mm film")
    cinematic.get_by_role("button", name="Save Cinematic").click()
    expect(page.get_by_role("status")).to_have_text("Preset saved.")
    page.reload()
    expect(page.locator("li.preset", has_text="Cinematic")).to_contain_text("golden hour")

    # Removed: a built-in is hidden, one's own deleted.
    page.get_by_role("button", name="Remove Drone").click()
    expect(page.get_by_role("status")).to_have_text("Preset removed.")
    expect(page.locator("li.preset", has_text="Drone")).to_have_count(0)
    page.screenshot(path=artifacts / "presets-page.png", full_page=True)

    page.goto(server.url + "/create")
    camera = page.get_by_role("group", name="Camera presets")
    expect(camera.get_by_role("button", name="Drone")).to_have_count(0)
    page.get_by_label("Prompt", exact=True).fill("a city at night")
    camera.get_by_role("button", name="Crane up").click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(
        "a city at night, the camera cranes up to reveal the city"
    )
    expect(page.get_by_label("Steps")).to_have_value("12")
    page.get_by_role("group", name="Style presets").get_by_role("button", name="Cinematic").click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(
        "a city at night, the camera cranes up to reveal the city, "
        "cinematic, golden hour, 35mm film"
    )

    page.goto(server.url + "/settings/presets")
    page.get_by_role("button", name="Remove Crane up").click()
    expect(page.get_by_role("status")).to_have_text("Preset removed.")
    page.reload()
    expect(page.locator("li.preset", has_text="Crane up")).to_have_count(0)


def test_bad_preset_input_is_refused_clearly_and_changes_nothing(page: Page, server):
    page.goto(server.url + "/settings/presets")
    before = page.locator("li.preset").count()
    add = page.get_by_role("region", name="Add a preset")
    add.get_by_label("Name").fill("   ")
    add.get_by_label("Added to the prompt").fill("slow motion")
    add.get_by_role("button", name="Add preset").click()
    expect(page.locator("#new-name-error")).to_have_text("give the preset a name")
    expect(add.get_by_label("Added to the prompt")).to_have_value("slow motion")

    add = page.get_by_role("region", name="Add a preset")
    add.get_by_label("Name").fill("Slow")
    add.get_by_label("Added to the prompt").fill("slow " * 80)
    add.get_by_role("button", name="Add preset").click()
    expect(page.locator("#new-addition-error")).to_contain_text("at most 300")

    add = page.get_by_role("region", name="Add a preset")
    add.get_by_label("Added to the prompt").fill("slow motion")
    add.get_by_label("Steps (optional)").fill("many")
    add.get_by_role("button", name="Add preset").click()
    expect(page.locator("#new-steps-error")).to_contain_text("whole number")

    # A setting a preset cannot carry is refused, not dropped.
    page.goto(server.url + "/settings/presets")
    page.evaluate(
        """() => {
      const form = document.querySelector('#add-h').parentElement.querySelector('form');
      form.querySelector('[name=name]').value = 'Sneaky';
      form.querySelector('[name=addition]').value = 'sneaky';
      const extra = document.createElement('input');
      extra.type = 'hidden'; extra.name = 'seed'; extra.value = '5';
      form.append(extra);
      form.requestSubmit();
    }"""
    )
    expect(page.get_by_role("alert")).to_contain_text("cannot set seed")

    page.goto(server.url + "/settings/presets")
    expect(page.locator("li.preset")).to_have_count(before)


def test_more_options_are_folded_on_the_home_page_and_open_on_create(page: Page, server):
    page.goto(server.url + "/")
    expect(page.get_by_label("Prompt", exact=True)).to_be_visible()
    expect(page.get_by_label("Seed", exact=True)).to_be_hidden()
    page.get_by_text("More options").click()
    expect(page.get_by_label("Seed", exact=True)).to_be_visible()
    page.goto(server.url + "/create")
    expect(page.get_by_label("Seed", exact=True)).to_be_visible()
