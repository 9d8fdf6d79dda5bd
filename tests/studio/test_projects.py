"""Projects in a real browser: made, searched, noted; a video added from its page; a
conversation started in a project and resumed, with its history, after the server restarts."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect
from tests.api.test_chat import wait_for_chat

ENV = {"MOVIOLA_ASSISTANT_MODEL": "tiny-chat", "MOVIOLA_MAX_PROMPT_CHARS": "80"}


def shot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=artifacts / f"projects-{name}.png", full_page=True)


def make_project(page: Page, name: str, notes: str) -> str:
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Notes (optional)").fill(notes)
    page.get_by_role("button", name="Create project").click()
    expect(page).to_have_url(re.compile(r"/projects/proj_\w+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    return page.url.rsplit("/", 1)[1]


def test_projects_are_made_searched_noted_and_hold_videos(make_server, page: Page, artifacts):
    server = make_server(env={"MOVIOLA_WORKERS": "0"}).start()  # rows only: nothing renders
    video = server.client().videos.create(prompt="a keeper climbs the lighthouse stairs")

    page.goto(server.url + "/projects")
    expect(page.locator(".empty")).to_contain_text("No projects yet")
    lighthouse = make_project(page, "The lighthouse", "cold blue light, slow dolly shots")
    page.goto(server.url + "/projects")
    make_project(page, "Corgi surf", "sunny, handheld")

    # Search finds a project by a word of its notes, not the others.
    page.goto(server.url + "/projects")
    cards = page.locator(".project-card")
    expect(cards).to_have_count(2)
    page.get_by_label("Search projects").fill("dolly")
    page.get_by_role("button", name="Search").click()
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text("The lighthouse")
    page.get_by_label("Search projects").fill("nothing like this")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".empty")).to_contain_text("No project matches")

    # The notes are edited on the project's page.
    page.goto(server.url + f"/projects/{lighthouse}")
    page.get_by_label("Notes", exact=True).fill("cold blue light; the keeper is old")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#saved")).to_have_text("Saved.")
    expect(page.get_by_label("Notes", exact=True)).to_have_value(
        "cold blue light; the keeper is old"
    )

    # A video is added from its own page, and shows in the project.
    page.goto(server.url + f"/videos/{video.id}")
    page.get_by_label("Add to project").select_option(label="The lighthouse")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator(".video-projects")).to_contain_text("In The lighthouse.")
    page.get_by_role("link", name="The lighthouse").click()
    expect(page.locator(f'.project-videos .card[data-id="{video.id}"]')).to_be_visible()
    page.set_viewport_size({"width": 1440, "height": 900})
    shot(page, artifacts, "project-desktop")
    page.goto(server.url + "/projects")
    shot(page, artifacts, "list-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, artifacts, "list-phone")
    page.goto(server.url + f"/projects/{lighthouse}")
    shot(page, artifacts, "project-phone")

    # Taken out again: the video stays in the library.
    page.get_by_role("button", name=re.compile("Take “a keeper climbs")).click()
    expect(page.locator(".project-videos")).to_have_count(0)
    assert server.client().videos.retrieve(video.id).id == video.id


def test_a_conversation_resumes_after_a_restart(make_server, page: Page, artifacts, tmp_path):
    server = make_server(tmp_path / "data", ENV).start()
    wait_for_chat(server.client())
    page.goto(server.url + "/projects")
    project = make_project(page, "Harbour film", "night scenes, lanterns")

    # A conversation started on the project's page belongs to the project.
    page.get_by_role("button", name="Assistant", exact=True).click()
    expect(page.get_by_label("Project", exact=True)).to_have_value(project)
    page.get_by_label("Message", exact=True).fill("three shots for the opening")
    page.get_by_role("button", name="Send").click()
    reply = page.locator("#assistant-log .msg.assistant .text")
    expect(reply).to_have_count(1)
    expect(page.locator("#assistant-log .msg.writing")).to_have_count(0, timeout=60_000)
    said = reply.text_content()

    server.stop()
    server.start()
    wait_for_chat(server.client())

    # A fresh browser (nothing kept in it): the project lists the conversation; Resume opens
    # the panel with its history.
    fresh = page.context.browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        tab = fresh.new_page()
        tab.goto(server.url + f"/projects/{project}")
        listed = tab.locator("#conversations li")
        expect(listed).to_have_count(1)
        expect(listed).to_contain_text("three shots for the opening")
        listed.get_by_role("link", name=re.compile("Resume")).click()
        log = tab.locator("#assistant-log")
        expect(log.locator(".msg")).to_have_count(2)
        expect(log.locator(".msg.user .text")).to_have_text("three shots for the opening")
        expect(log.locator(".msg.assistant .text")).to_have_text(said)
        expect(tab.get_by_label("Project", exact=True)).to_have_value(project)
        expect(tab.get_by_label("Message", exact=True)).to_be_focused()
        tab.screenshot(path=artifacts / "projects-resumed.png")
    finally:
        fresh.close()
