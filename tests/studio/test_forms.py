"""Refusals are shown beside the control at fault, in plain words, and nothing typed is lost."""

from __future__ import annotations

import base64

from playwright.sync_api import Page, expect

# A 1×1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def test_bad_size_is_shown_by_the_size_box_and_the_form_keeps_what_was_typed(
    page: Page, studio, artifacts
):
    page.goto(studio.url + "/create")
    page.get_by_label("Prompt", exact=True).fill("a fox in the snow")
    page.get_by_label("Exact size (width×height)").fill("161x96")
    page.get_by_label("Duration (seconds)").fill("1")
    page.get_by_label("Seed", exact=True).fill("42")
    page.get_by_text("Advanced").click()
    page.get_by_label("Negative prompt").fill("blurry")
    page.get_by_role("button", name="Create video").click()

    error = page.locator("#size-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("161")
    expect(page.get_by_label("Exact size (width×height)")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a fox in the snow")
    expect(page.get_by_label("Exact size (width×height)")).to_have_value("161x96")
    expect(page.get_by_label("Seed", exact=True)).to_have_value("42")
    expect(page.get_by_label("Negative prompt")).to_have_value("blurry")
    page.screenshot(path=artifacts / "10-error-size.png", full_page=True)


def test_an_empty_prompt_and_a_too_long_one_are_refused_by_the_prompt_box(page: Page, studio):
    page.goto(studio.url + "/create")
    page.get_by_label("Prompt", exact=True).fill("   ")
    page.get_by_label("Exact size (width×height)").fill("160x96")
    page.get_by_role("button", name="Create video").click()
    expect(page.locator("#prompt-error")).to_contain_text("prompt is required")

    long_prompt = "waves " * 60  # over the test server's 300-character limit
    page.get_by_label("Prompt", exact=True).fill(long_prompt)
    page.get_by_role("button", name="Create video").click()
    expect(page.locator("#prompt-error")).to_contain_text("300")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(long_prompt)
    expect(page.get_by_label("Exact size (width×height)")).to_have_value("160x96")


def test_the_prompt_draft_survives_a_reload(page: Page, studio):
    page.goto(studio.url + "/create")
    page.get_by_label("Prompt", exact=True).fill("a draft about a harbour")
    page.get_by_role("button", name="Portrait 9:16").click()
    expect(page.get_by_label("Exact size (width×height)")).to_have_value("96x160")
    page.reload()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a draft about a harbour")
    expect(page.get_by_label("Exact size (width×height)")).to_have_value("96x160")


def test_storyboard_shots_are_reordered_duplicated_and_removed_and_errors_name_the_shot(
    page: Page, studio
):
    page.goto(studio.url + "/storyboard")
    prompts = page.locator("textarea[name=shot_prompt]")
    prompts.first.fill("first")
    page.get_by_role("group", name="Shot 1").get_by_role("button", name="Duplicate").click()
    expect(prompts).to_have_count(2)
    expect(prompts.nth(1)).to_have_value("first")
    prompts.nth(1).fill("second")
    page.get_by_role("button", name="Add a shot").click()
    prompts.nth(2).fill("   ")  # nothing but spaces: refused, for this shot
    page.get_by_role("group", name="Shot 2").get_by_role("button", name="Move up").click()
    expect(prompts.nth(0)).to_have_value("second")
    expect(prompts.nth(1)).to_have_value("first")
    page.get_by_role("button", name="Add a shot").click()
    page.get_by_role("group", name="Shot 4").get_by_role("button", name="Remove").click()
    expect(prompts).to_have_count(3)
    page.get_by_label("Exact size (width×height)").fill("160x96")
    # A start image for the (now) first shot: it must survive the error too.
    page.locator("input[name=shot_image]").nth(0).set_input_files(
        {"name": "dawn.png", "mimeType": "image/png", "buffer": PNG}
    )
    page.wait_for_timeout(300)  # the page reads the image to keep it
    page.get_by_role("button", name="Render storyboard").click()

    expect(page.locator("#shot_3_prompt-error")).to_contain_text("shot 3")
    expect(prompts.nth(0)).to_have_value("second")
    expect(prompts.nth(1)).to_have_value("first")
    expect(page.get_by_label("Exact size (width×height)")).to_have_value("160x96")
    images = page.locator("input[name=shot_image]")
    assert images.nth(0).evaluate("input => input.files[0]?.name") == "dawn.png"
    assert images.nth(1).evaluate("input => input.files.length") == 0


def test_a_refused_remix_or_edit_is_explained_beside_its_own_box(page: Page, studio, small):
    video = studio.client().videos.create_and_poll(prompt="a quiet pond", **small)
    page.goto(f"{studio.url}/videos/{video.id}")
    page.locator("summary", has_text="Remix").click()
    page.get_by_label("New prompt").fill("the pond in autumn")
    page.get_by_label("Strength (0–1: how far it may move from this video)").fill("5")
    # The browser's own range check would stop this first; the server's is what is tested.
    page.locator("#remix-form").evaluate("form => form.noValidate = true")
    page.get_by_role("button", name="Remix", exact=True).click()
    expect(page.locator("#remix_strength-error")).to_contain_text("strength")
    expect(page.get_by_label("New prompt")).to_have_value("the pond in autumn")
    expect(page.get_by_label("Strength (0–1: how far it may move from this video)")).to_have_value(
        "5"
    )

    page.locator("summary", has_text="Edit").click()
    expect(page.locator("#edit_prompt")).to_have_attribute("required", "")
    # The browser asks for the prompt first; past it, the server's refusal is what is tested.
    page.locator("form[action$='/edit']").evaluate("form => form.noValidate = true")
    page.get_by_role("button", name="Edit", exact=True).click()
    expect(page.locator("#edit_prompt-error")).to_contain_text("prompt is required")


DROP_A_PICTURE = """async () => {
  const canvas = document.createElement('canvas');
  canvas.width = 64; canvas.height = 40;
  const pen = canvas.getContext('2d');
  pen.fillStyle = '#d9480f'; pen.fillRect(0, 0, 64, 40);
  const blob = await new Promise(done => canvas.toBlob(done, 'image/png'));
  const files = new DataTransfer();
  files.items.add(new File([blob], 'sunset.png', {type: 'image/png'}));
  document.getElementById('drop').dispatchEvent(
    new DragEvent('drop', {dataTransfer: files, bubbles: true, cancelable: true}));
}"""


def test_a_dropped_picture_survives_an_error_and_is_animated(page: Page, studio):
    page.goto(studio.url + "/create")
    page.evaluate(DROP_A_PICTURE)
    expect(page.locator("#image-preview")).to_be_visible()
    page.get_by_label("Prompt", exact=True).fill("the sun sets")
    page.get_by_label("Exact size (width×height)").fill("161x96")
    page.get_by_label("Duration (seconds)").fill("1")
    page.get_by_role("button", name="Create video").click()
    expect(page.locator("#size-error")).to_be_visible()
    # The picture is still chosen after the error: fix the size and go.
    assert page.locator("#image").evaluate("input => input.files[0].name") == "sunset.png"
    page.get_by_label("Exact size (width×height)").fill("160x96")
    page.get_by_role("button", name="Create video").click()
    expect(page.locator("#player")).to_be_visible(timeout=60_000)
    expect(page.locator("#snippet-python")).to_contain_text("input_reference")
