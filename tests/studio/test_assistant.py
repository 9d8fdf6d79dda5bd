"""The assistant in the Studio, in a real browser against a real server whose assistant runs
`tiny-chat` (noise for words, but JSON that fits its schema): a conversation streamed and kept,
actions applied only when the creator says so, Improve, a script made into shots that render,
thumbs up found by the library's filter, and a backend that is down said plainly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from tests.api.test_chat import wait_for_chat

from moviola.assistant.projects import Projects

SMALL_SIZE = "160x96"
# tiny-chat spends about a token a byte: prompts of at most 80 characters keep a storyboard's
# shots, and every answer, quick to generate.
ENV = {"MOVIOLA_ASSISTANT_MODEL": "tiny-chat", "MOVIOLA_MAX_PROMPT_CHARS": "80"}
# Every length the reply being written had, as the page showed it: a reply that streams shows
# several before it is done, one that arrives whole shows one.
RECORD_REPLY = """
window.replyLengths = [];
new MutationObserver(() => {
  const writing = document.querySelector('#assistant-log .msg.writing .text');
  if (!writing) return;
  const n = writing.textContent.length;
  if (n && window.replyLengths[window.replyLengths.length - 1] !== n) window.replyLengths.push(n);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


@pytest.fixture(scope="module")
def server(server_class, tmp_path_factory):
    started = server_class(tmp_path_factory.mktemp("assistant") / "data", ENV).start()
    wait_for_chat(started.client())
    yield started
    started.stop()


def shot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=artifacts / f"assistant-{name}.png", full_page=False)


def open_panel(page: Page) -> None:
    page.get_by_role("button", name="Assistant", exact=True).click()
    expect(page.get_by_label("Message", exact=True)).to_be_focused()


def conversation_with_actions(server, actions: list[dict]) -> tuple[str, list[str]]:
    """A conversation whose assistant messages proposed `actions`, stored as a turn stores them."""
    projects = Projects(server.sessions())
    conversation = projects.create_conversation(None, title="Ideas for the harbour")
    ids = []
    for action in actions:
        projects.add_message(None, conversation.id, "user", "what would you change?")
        made = projects.add_message(
            None, conversation.id, "assistant", "Here is a version to try.", action=action
        )
        ids.append(made.id)
    return conversation.id, ids


def test_a_turn_streams_into_the_panel_and_is_kept(server, page: Page, artifacts):
    page.add_init_script(RECORD_REPLY)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(server.url + "/create")
    page.get_by_label("Prompt", exact=True).fill("a harbour at dawn, gulls over the boats")
    open_panel(page)
    page.get_by_label("Message", exact=True).fill("make the light warmer")
    page.get_by_role("button", name="Send").click()

    log = page.locator("#assistant-log")
    expect(log.locator(".msg.user .text")).to_have_text("make the light warmer")
    reply = log.locator(".msg.assistant")
    expect(reply).to_have_count(1)
    expect(log.locator(".msg.writing")).to_have_count(0, timeout=60_000)
    expect(log).to_have_attribute("aria-busy", "false")
    shown = reply.locator(".text").text_content()
    assert shown
    assert len(page.evaluate("window.replyLengths")) > 1, "the reply arrived whole"
    shot(page, artifacts, "panel-desktop")

    # Stored: the conversation, read back through the API, holds both messages as shown, and
    # the page's context went with the creator's.
    conversation_id = page.locator("#assistant-conversation").input_value()
    kept = server.client().get(f"/conversations/{conversation_id}", cast_to=object)
    roles = [(m["role"], m["content"]) for m in kept["messages"]]
    assert roles == [("user", "make the light warmer"), ("assistant", shown)]
    context = kept["messages"][0]["context"]
    assert context["page"] == "create"
    assert context["prompt"] == "a harbour at dawn, gulls over the boats"
    assert kept["title"] == "make the light warmer"

    # On another page the panel goes on in the same conversation.
    page.goto(server.url + "/storyboard")
    expect(page.locator("#assistant-log .msg")).to_have_count(2)


def test_an_action_is_applied_only_after_apply(server, page: Page, artifacts):
    written = "a harbour at golden hour, warm light on wet stone, slow dolly along the quay"
    conversation_id, (fill, other) = conversation_with_actions(
        server,
        [
            {"type": "fill_prompt", "prompt": written},
            {"type": "fill_prompt", "prompt": "something else entirely"},
        ],
    )
    page.goto(server.url + f"/create?conversation={conversation_id}")
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill("my own idea")
    cards = page.locator(".action-card")
    expect(cards).to_have_count(2)
    expect(cards.first).to_contain_text("Fill the prompt with")
    expect(cards.first).to_contain_text(written)
    expect(prompt).to_have_value("my own idea")  # shown, not done

    cards.nth(1).get_by_role("button", name="Dismiss").click()
    expect(cards.nth(1)).to_contain_text("Dismissed.")
    expect(prompt).to_have_value("my own idea")

    cards.first.get_by_role("button", name="Apply").click()
    expect(cards.first).to_contain_text("Applied.")
    expect(prompt).to_have_value(written)
    shot(page, artifacts, "action-applied")

    states = {
        m["id"]: m["action"]["state"]
        for m in server.client().get(f"/conversations/{conversation_id}", cast_to=object)[
            "messages"
        ]
        if m["action"]
    }
    assert states == {fill: "confirmed", other: "dismissed"}


def test_shots_and_a_remix_are_applied_on_their_pages(server, page: Page, small):
    source = server.client().videos.create_and_poll(prompt="a lighthouse at dusk", **small)
    shots = [
        {"prompt": "the keeper climbs the stairs", "seconds": 1, "image_hint": "a lantern"},
        {"prompt": "the lamp turns over the sea", "seconds": 2, "image_hint": None},
    ]
    conversation_id, _ = conversation_with_actions(
        server,
        [
            {"type": "add_shots", "shots": shots},
            {"type": "remix", "video_id": source.id, "prompt": "the lighthouse in a snowstorm"},
        ],
    )

    # On the Storyboard page: the shots join the editor (an empty one is replaced).
    page.goto(server.url + f"/storyboard?conversation={conversation_id}")
    cards = page.locator(".action-card")
    expect(cards.first).to_contain_text("Add 2 shots")
    expect(cards.nth(1)).to_contain_text("Open the video's page to apply it.")
    expect(page.locator("#shots .shot")).to_have_count(1)
    cards.first.get_by_role("button", name="Apply").click()
    prompts = page.locator("#shots .shot textarea")
    expect(prompts).to_have_count(2)
    expect(prompts.nth(0)).to_have_value("the keeper climbs the stairs")
    expect(page.locator("#shots .shot").nth(0).locator("[data-image-hint]")).to_contain_text(
        "a lantern"
    )
    expect(page.locator("#shot-seconds-2")).to_have_value("2")

    # On the video's page: Apply sends the remix form with the prompt offered.
    page.goto(server.url + f"/videos/{source.id}?conversation={conversation_id}")
    page.locator(".action-card").nth(1).get_by_role("button", name="Apply").click()
    expect(page).not_to_have_url(re.compile(source.id))
    remix_id = page.locator("article[data-video]").get_attribute("data-video")
    remix = server.client().videos.retrieve(remix_id)
    assert remix.prompt == "the lighthouse in a snowstorm"
    assert remix.remixed_from_video_id == source.id


def test_improve_writes_the_prompt_keeps_the_idea_and_the_video_keeps_it(
    server, page: Page, artifacts
):
    idea = "a fox in the snow"
    page.goto(server.url + "/create")
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill(idea)
    page.get_by_role("button", name="Improve").click()
    expect(page.locator("#improved")).to_be_visible(timeout=60_000)
    written = prompt.input_value()
    assert written and written != idea
    expect(page.locator("#improve-idea")).to_have_text(idea)
    variants = page.locator("#improve-versions .chip[data-variant]")
    expect(variants).to_have_count(3)
    shot(page, artifacts, "improve")

    # A variant is one click; "Restore your idea" brings the idea back.
    second = variants.nth(1).get_attribute("title")
    variants.nth(1).click()
    expect(prompt).to_have_value(second)
    expect(variants.nth(1)).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Restore your idea").click()
    expect(prompt).to_have_value(idea)
    expect(page.locator("#improved")).to_be_hidden()

    # Improved again and made: the video keeps the idea and the versions not chosen.
    page.get_by_role("button", name="Improve").click()
    expect(page.locator("#improved")).to_be_visible(timeout=60_000)
    chosen = prompt.input_value()
    page.get_by_label("Exact size (width×height)").fill(SMALL_SIZE)
    page.get_by_label("Duration (seconds)").fill("1")
    page.get_by_role("button", name="Create video").click()
    expect(page).to_have_url(re.compile(r"/videos/video_[0-9a-f]+"))
    video_id = page.locator("article[data-video]").get_attribute("data-video")
    made = server.client().videos.retrieve(video_id)
    extras = made.model_extra["moviola"]
    assert made.prompt == chosen
    assert extras["original_prompt"] == idea
    assert len(extras["prompt_variants"]) == 3 and chosen not in extras["prompt_variants"]


def test_a_script_becomes_shots_in_the_editor_that_render(server, page: Page, artifacts):
    script = (
        "INT. LIGHTHOUSE - NIGHT. The keeper climbs the spiral stairs with a lantern.\n\n"
        "EXT. CLIFF - DAWN. Waves break below; a gull lands on the rail."
    )
    page.goto(server.url + "/storyboard")
    page.get_by_role("button", name="From a script…").click()
    dialog = page.get_by_role("dialog", name="Shots from a script")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Script").fill(script)
    expect(dialog.locator("#script-count")).to_have_text(f"{len(script)} / 100,000 characters")
    dialog.get_by_label("Length in all, in seconds (optional)").fill("2")
    shot(page, artifacts, "script-dialog")
    dialog.get_by_role("button", name="Write the shots").click()
    expect(dialog).to_be_hidden(timeout=90_000)

    shots = page.locator("#shots .shot")
    count = shots.count()
    assert 1 <= count <= 2
    seconds = [
        int(shots.nth(i).locator('input[type="number"]').input_value()) for i in range(count)
    ]
    assert sum(seconds) == 2
    for i in range(count):
        assert shots.nth(i).locator("textarea").input_value().strip()
    expect(page.locator("#shots-status")).to_contain_text("written")
    shot(page, artifacts, "script-shots")

    page.get_by_label("Exact size (width×height)").fill(SMALL_SIZE)
    page.get_by_role("button", name="Render storyboard").click()
    expect(page).to_have_url(re.compile(r"/videos/video_[0-9a-f]+"))
    expect(page.locator("#player")).to_be_visible(timeout=120_000)
    expect(page.locator(".shots-list li")).to_have_count(count)


def test_thumbs_up_then_the_library_finds_it_liked(server, page: Page, small, artifacts):
    client = server.client()
    # Finished first: a video page still waiting reloads itself when the video is done, which
    # would reset the rating's status line between the clicks below.
    liked = client.videos.create_and_poll(prompt="a kite over dunes", **small)
    other = client.videos.create(prompt="a heron at dawn", **small)
    page.goto(server.url + f"/videos/{liked.id}")
    up = page.get_by_role("button", name="✓ Like")
    expect(up).to_have_attribute("aria-pressed", "false")
    page.get_by_label("Note").fill("the light on the sand")
    up.click()
    expect(page.locator("#rating-status")).to_have_text("Liked.")
    expect(up).to_have_attribute("aria-pressed", "true")
    shot(page, artifacts, "rating")

    # Pressed again, the rating clears; pressed once more, it is back (the note kept).
    up.click()
    expect(page.locator("#rating-status")).to_have_text("Note saved.")
    expect(up).to_have_attribute("aria-pressed", "false")
    up.click()
    expect(up).to_have_attribute("aria-pressed", "true")
    rating = client.videos.retrieve(liked.id).model_extra["moviola"]["rating"]
    assert rating["value"] == "up" and rating["note"] == "the light on the sand"

    page.goto(server.url + "/library")
    page.get_by_label("Rating").select_option("liked")
    page.get_by_role("button", name="Show").click()
    expect(page.locator(f'.card[data-id="{liked.id}"] .rating')).to_have_text("✓ liked")
    expect(page.locator(f'.card[data-id="{other.id}"]')).to_have_count(0)


def test_a_panel_on_a_phone_opens_as_a_sheet(server, phone: Page, artifacts):
    conversation_id, _ = conversation_with_actions(
        server, [{"type": "fill_prompt", "prompt": "a harbour at night, lanterns on the water"}]
    )
    phone.goto(server.url + "/create")
    panel = phone.locator("#assistant-panel")
    expect(panel).to_be_hidden()
    open_panel(phone)
    box = panel.bounding_box()
    assert box["width"] == 390 and box["y"] + box["height"] == 844  # along the bottom
    phone.get_by_label("Conversation", exact=True).select_option(conversation_id)
    expect(phone.locator(".action-card")).to_have_count(1)
    shot(phone, artifacts, "panel-phone")
    phone.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(phone.get_by_role("button", name="Assistant", exact=True)).to_be_focused()


def test_a_backend_that_is_down_is_said_plainly(make_server, page: Page):
    # The default chat model, not on this machine: the assistant cannot answer.
    down = make_server(env={"MOVIOLA_WORKERS": "0"}).start()
    page.goto(down.url + "/create")
    open_panel(page)
    page.get_by_label("Message", exact=True).fill("a prompt for a corgi, please")
    page.get_by_role("button", name="Send").click()
    alert = page.locator("#assistant-error")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("moviola models pull")
    expect(page.locator("#assistant-log .msg.assistant")).to_have_count(0)
    expect(page.get_by_role("button", name="Send")).to_be_enabled()

    page.get_by_label("Prompt", exact=True).fill("a corgi")
    page.get_by_role("button", name="Improve").click()
    expect(page.locator("#improve-error")).to_contain_text("moviola models pull")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a corgi")


def test_context_that_is_not_a_page_context_is_refused(server, page: Page):
    page.goto(server.url + "/create")
    conversation = page.evaluate(
        """async () => {
          const csrf = document.body.dataset.csrf;
          const body = new FormData();
          body.set("title", "x");
          const made = await fetch("/studio/assistant/conversations", {
            method: "POST", body, headers: {"x-csrf-token": csrf}});
          const id = (await made.json()).id;
          const turn = new FormData();
          turn.set("content", "hello");
          turn.set("context", JSON.stringify({page: "create", colour: "red"}));
          const answer = await fetch(`/studio/assistant/conversations/${id}/messages`, {
            method: "POST", body: turn, headers: {"x-csrf-token": csrf}});
          return {status: answer.status, body: await answer.json()};
        }"""
    )
    assert conversation["status"] == 400
    assert conversation["body"]["error"]["param"] == "context"
    assert "colour" in json.dumps(conversation["body"])
