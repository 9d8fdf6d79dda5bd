"""The first run: a fresh server with no weights, where no alias names a test model, so no
video model is installed. Create's first-run card recommends the test model (this machine has
no GPU), installs it in one click with a progress bar in bytes, and Create is then ready with
it selected: a video renders."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect
from tests.studio.test_page_checks import axe_violations

ENV = {
    "MOVIOLA_MODEL_ALIASES": "sora-2=wan2.2-ti2v-5b,sora-2-pro=ltx-2",  # neither installed
    # The test model is about 400 KB: at 100 KB/s its copy takes long enough to watch.
    "MOVIOLA_INSTALL_MAX_BYTES_PER_S": "100000",
}
# Every line the install's progress shows, kept across the page changes.
RECORD_PROGRESS = """
new MutationObserver(() => {
  const line = document.querySelector('.onboarding [data-field=line]');
  const bar = document.querySelector('.onboarding progress');
  if (!line || !bar) return;
  const seen = JSON.parse(sessionStorage.getItem('seen') || '[]');
  const now = [line.textContent, bar.value];
  if (JSON.stringify(seen[seen.length - 1]) !== JSON.stringify(now)) seen.push(now);
  sessionStorage.setItem('seen', JSON.stringify(seen));
}).observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
"""


def shots(page: Page, artifacts: Path, name: str) -> None:
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=artifacts / f"onboarding-{name}-{width}.png")
    page.set_viewport_size({"width": 1440, "height": 900})


def test_first_run_installs_the_test_model_in_one_click_and_it_renders(
    make_server, browser, page: Page, artifacts
):
    studio = make_server(env=ENV).start()
    page.add_init_script(RECORD_PROGRESS)
    page.goto(studio.url + "/")

    card = page.locator(".onboarding")
    expect(card.get_by_role("heading")).to_have_text("Install a model to start")
    expect(card).to_contain_text("this machine has no GPU")
    expect(card).to_contain_text("makes noise, not pictures")
    # Nothing to pick yet, and the default says plainly why.
    expect(page.get_by_label("Model", exact=True)).to_have_value("")
    expect(page.locator("#model-missing")).to_contain_text("sora-2 (wan2.2-ti2v-5b)")
    expect(page.locator("#model-missing")).to_contain_text("is not installed")
    shots(page, artifacts, "card")
    checked = browser.new_context(bypass_csp=True)  # axe is injected as an inline script
    try:
        assert axe_violations(checked.new_page(), studio.url + "/") == []
    finally:
        checked.close()

    card.get_by_role("button", name="Install tiny").click()
    expect(card.locator("progress")).to_be_visible()
    expect(card.get_by_role("button", name="Cancel install")).to_be_visible()
    # Saving the test model's folder (its "download") loads torch first: a while on a busy CPU.
    expect(card.locator("[data-field=line]")).to_contain_text(
        re.compile(r"KB of [\d.]+ KB"), timeout=120_000
    )
    shots(page, artifacts, "installing")

    # Done: Create opens with the model selected, and the card says so.
    expect(page).to_have_url(re.compile(r"/\?model=tiny&installed=tiny$"), timeout=120_000)
    expect(page.locator(".onboarding.done")).to_contain_text("tiny is installed")
    expect(page.get_by_label("Model", exact=True)).to_have_value("tiny")
    shots(page, artifacts, "done")

    seen = page.evaluate("() => JSON.parse(sessionStorage.getItem('seen') || '[]')")
    downloading = [(line, value) for line, value in seen if re.search(r" of [\d.]+ KB", line)]
    values = [value for _, value in downloading]
    assert len(set(values)) >= 3 and values == sorted(values), seen  # it moved, forwards
    assert any(re.search(r"KB/s · about \d+ s left", line) for line, _ in downloading), seen

    # A first video, with the model just installed.
    page.get_by_label("Prompt", exact=True).fill("a paper boat on a pond")
    page.get_by_label("Exact size (width×height)").fill("160x96")
    page.get_by_label("Duration (seconds)").fill("1")
    page.get_by_role("button", name="Create video").click()
    expect(page).to_have_url(re.compile(r"/videos/video_[0-9a-f]+"))
    expect(page.locator("#player")).to_be_visible(timeout=90_000)
    expect(page.locator("body")).to_contain_text("tiny")

    # The card is gone for good: a model is installed.
    page.goto(studio.url + "/")
    expect(page.locator(".onboarding")).to_have_count(0)
    expect(page.get_by_label("Model", exact=True)).to_have_value("tiny")
