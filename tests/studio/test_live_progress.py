"""Truthful progress in a real browser: one live state on cards, video pages and the queue,
stage and step labels, a preview of the latents, the percentage in the tab's title, and a
word when a job is done — against a real server rendering with the tiny model."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

# Enough steps that a tiny job takes a few seconds: long enough to be watched.
SLOW = {"size": "160x96", "seconds": "2", "extra_body": {"num_inference_steps": 120}}
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}

# What the video page shows, sampled every 40 ms (once its scripts have run) and kept across
# the reload that brings the player: both badges, the bar, the percentage, the stage, the
# estimate and the tab's title.
SAMPLE = """
document.addEventListener('DOMContentLoaded', () => setInterval(() => {
  const box = document.querySelector('[data-job]');
  if (!box) return;
  const text = (name) => box.querySelector(`[data-field=${name}]`)?.textContent ?? null;
  const samples = JSON.parse(sessionStorage.getItem('samples') || '[]');
  samples.push({
    badge: text('status'),
    facts: document.querySelector('.facts [data-badge-of]')?.textContent ?? null,
    bar: box.querySelector('progress').value,
    percent: text('percent'),
    label: text('label'),
    eta: text('eta'),
    title: document.title,
  });
  sessionStorage.setItem('samples', JSON.stringify(samples));
}, 40));
"""


@pytest.fixture(scope="module")
def server(server_class, tmp_path_factory):
    """One worker: a second job waits for the first."""
    started = server_class(tmp_path_factory.mktemp("live") / "data").start()
    yield started
    started.stop()


@pytest.fixture
def tabs(browser):
    """Fresh tabs at a desktop's and a phone's size, each with its own storage."""
    opened = []

    def tab(viewport: dict, **options) -> Page:
        context = browser.new_context(viewport=viewport, **options)
        context.set_default_timeout(60_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        opened.append((context, errors))
        return page

    yield tab
    for context, errors in opened:
        context.close()
        assert not errors, f"script errors on the page: {errors}"


def test_a_card_goes_from_queued_to_its_steps_to_the_finished_video_without_a_reload(
    server, tabs, artifacts
):
    client = server.client()
    first = client.videos.create(prompt="a kite over dunes", **SLOW)
    second = client.videos.create(prompt="a heron in the reeds at dawn", **SLOW)
    desktop = tabs(DESKTOP)
    phone = tabs(PHONE, is_mobile=True, has_touch=True)
    for tab in (desktop, phone):
        tab.goto(server.url + "/library")
        tab.evaluate("() => { window.sameDocument = true }")

    card = desktop.locator(f"li.card[data-id='{second.id}']")
    expect(card.locator("[data-field=status]")).to_have_text("queued")
    expect(card.locator("[data-field=position]")).to_have_text("#1 in the queue")
    expect(card.locator("[data-field=label]")).to_have_text("waiting")

    # Its turn: the stage and step, the bar, and its badge, all of one moment.
    expect(card.locator("[data-field=label]")).to_have_text(
        re.compile(r"denoising step \d+/120"), timeout=60_000
    )
    expect(card.locator("[data-field=status]")).to_have_text("in progress")
    expect(card.locator(".meta [data-badge-of]")).to_have_text("in progress")
    expect(card.locator("img.live-preview")).to_be_visible()  # the latents, as they stand
    expect(desktop).to_have_title(re.compile(r"^\d+% · Home · Moviola$"))
    desktop.screenshot(path=artifacts / "live-card-desktop.png", full_page=True)
    phone.locator(f"li.card[data-id='{second.id}'] img.live-preview").scroll_into_view_if_needed()
    phone.screenshot(path=artifacts / "live-card-phone.png")

    # Done: the card is the finished video now — its thumbnail, its badge — on the same page.
    expect(card.locator("img[src$='/file/thumbnail']")).to_be_visible(timeout=60_000)
    expect(card.locator(".meta .badge")).to_have_text("completed")
    expect(card.locator("[data-job]")).to_have_count(0)
    finished = desktop.locator(f"li.card[data-id='{first.id}'] img[src$='/file/thumbnail']")
    expect(finished).to_be_visible()
    assert desktop.evaluate("() => window.sameDocument") is True
    expect(desktop).to_have_title("Home · Moviola")
    # And a word that it is done, where nobody allowed notifications: a toast on the page.
    expect(desktop.locator(".toast").filter(has_text="Done: a heron")).to_have_count(1)


def test_the_video_page_badge_bar_and_title_always_agree(server, tabs, artifacts):
    client = server.client()
    client.videos.create(prompt="waves on a pier", **SLOW)  # runs first
    video = client.videos.create(prompt="a lighthouse in a storm", **SLOW)
    desktop = tabs(DESKTOP)
    desktop.add_init_script(SAMPLE)
    phone = tabs(PHONE, is_mobile=True, has_touch=True)
    desktop.goto(f"{server.url}/videos/{video.id}")
    phone.goto(f"{server.url}/videos/{video.id}")
    expect(desktop.locator(".facts [data-badge-of]")).to_have_text("queued")

    preview = desktop.locator("img.live-preview")
    expect(preview).to_be_visible(timeout=60_000)
    assert desktop.evaluate("() => document.querySelector('img.live-preview').naturalWidth") > 0
    assert re.search(r"/videos/video_\w+/preview\?v=\d+$", preview.get_attribute("src"))
    expect(phone.locator("img.live-preview")).to_be_visible()
    desktop.screenshot(path=artifacts / "live-video-desktop.png", full_page=True)
    phone.screenshot(path=artifacts / "live-video-phone.png", full_page=True)

    expect(desktop.locator("#player")).to_be_visible(timeout=60_000)
    expect(desktop.locator(".toast")).to_have_text("Done: a lighthouse in a storm")
    samples = desktop.evaluate("() => JSON.parse(sessionStorage.getItem('samples'))")
    assert {s["badge"] for s in samples} >= {"queued", "in progress"}
    for s in samples:
        assert s["badge"] == s["facts"], s  # the page's two badges never disagree
        if s["badge"] == "queued":
            assert (s["bar"], s["percent"], s["label"]) == (0, "", "waiting"), s
            assert s["title"] == "waiting · a lighthouse in a storm · Moviola", s
        elif s["badge"] == "in progress":
            assert 0 <= s["bar"] <= 99 and s["percent"] == f"{s['bar']}%", s
            assert s["title"].startswith(f"{s['bar']}% · "), s
        else:
            assert (s["badge"], s["bar"], s["percent"]) == ("completed", 100, "100%"), s
    assert any(re.fullmatch(r"denoising step \d+/120", s["label"]) for s in samples)
    # The estimate, from the history of this server's earlier runs.
    assert any(re.fullmatch(r"about \d+ (s|min) left", s["eta"]) for s in samples)


def test_a_permitted_notification_says_a_job_is_done(server, tabs):
    desktop = tabs(DESKTOP)
    # The system's notifications, as the page calls them, recorded instead of shown.
    desktop.add_init_script(
        """
        window.shown = [];
        window.Notification = class {
          static permission = 'granted';
          static requestPermission() { return Promise.resolve('granted'); }
          constructor(title, options) { window.shown.push([title, options.body]); }
        };
        """
    )
    video = server.client().videos.create(prompt="a comet over hills", **SLOW)
    desktop.goto(server.url + "/library")
    expect(desktop.locator(f"li.card[data-id='{video.id}'] [data-notify]")).to_be_hidden()
    desktop.wait_for_function("() => window.shown.length > 0", timeout=60_000)
    assert desktop.evaluate("() => window.shown") == [["Moviola", "Done: a comet over hills"]]
    expect(desktop.locator(".toast")).to_have_count(0)


def test_a_finished_card_and_a_preview_are_the_viewers_own(server):
    video = server.client().videos.create(prompt="a quiet street", **SLOW)
    card = httpx.get(f"{server.url}/videos/{video.id}/card", timeout=10)
    assert card.status_code == 200 and f'data-id="{video.id}"' in card.text
    assert httpx.get(f"{server.url}/videos/video_nothing/card", timeout=10).status_code == 404
    assert httpx.get(f"{server.url}/videos/video_nothing/preview", timeout=10).status_code == 404
