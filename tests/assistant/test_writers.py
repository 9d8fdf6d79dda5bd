"""The assistant's writers, part by part: style guides, the schemas a model is held to, shot
lengths, chunking a long text, and the system message a conversation starts from.

Tokens are counted by a real `ChatBackend` for a remote server (about four characters a token,
as Moviola estimates for a tokenizer it cannot see); nothing here calls a model."""

from __future__ import annotations

import json

import llguidance
import pytest
from pydantic import ValidationError

from moviola.assistant import chunks, schemas
from moviola.assistant.context import Facts, PageContext, ShotContext, VideoFacts, system_message
from moviola.assistant.storyboard_writer import Limits, fit_seconds, limits, sized
from moviola.assistant.styles import STYLES, style_for, writing_brief
from moviola.chat.backend import ChatBackend
from moviola.engine.catalogue import catalogue, get_model
from moviola.engine.storyboard import MAX_SHOTS
from moviola.errors import InvalidRequestError


def remote(context_tokens: int = 4096) -> ChatBackend:
    return ChatBackend(
        model="remote-model",
        context_tokens=context_tokens,
        timeout_s=1,
        base_url="http://127.0.0.1:9/v1",
    )


# --- style guides ------------------------------------------------------------------------------


def test_every_model_family_has_its_own_style_guide():
    families = {spec.family for spec in catalogue().values()}
    assert families <= set(STYLES)
    assert style_for(get_model("ltx-video")).name == "LTX-Video"


def test_a_model_that_makes_sound_is_told_to_describe_it_and_a_silent_one_is_not():
    assert "sound" in writing_brief(get_model("ltx-2")).lower()
    assert get_model("wan2.1-t2v-1.3b").audio is False
    assert "sound" not in writing_brief(get_model("wan2.1-t2v-1.3b")).lower()


# --- schemas -----------------------------------------------------------------------------------


def held_to(answer: type) -> llguidance.LLMatcher:
    """Whether llguidance (the local model's constrained decoding) takes the schema."""
    grammar = llguidance.LLMatcher.grammar_from_json_schema(answer.model_json_schema())
    assert llguidance.LLMatcher.validate_grammar(grammar) == ""
    return grammar


def test_a_storyboard_schema_holds_the_model_to_the_shots_limits():
    board = schemas.storyboard(
        max_chars=80, max_seconds=2, min_shots=2, max_shots=3, characters=("Mira", "Bo")
    )
    held_to(board)
    good = {
        "shots": [
            {"prompt": "Mira runs", "seconds": 2, "character": "Mira", "image_hint": None},
            {"prompt": "a door", "seconds": 1, "character": None, "image_hint": "a red door"},
        ]
    }
    assert board.model_validate_json(json.dumps(good)).shots[0].character == "Mira"
    for bad in (
        {"shots": good["shots"][:1]},  # too few shots
        {"shots": [{**good["shots"][0], "seconds": 3}, good["shots"][1]]},  # too long
        {"shots": [{**good["shots"][0], "character": "Zed"}, good["shots"][1]]},  # not theirs
        {"shots": [{**good["shots"][0], "extra": 1}, good["shots"][1]]},  # an unknown key
        {"shots": [{**good["shots"][0], "prompt": "x" * 81}, good["shots"][1]]},
    ):
        with pytest.raises(ValidationError):
            board.model_validate_json(json.dumps(bad))


def test_a_proposal_offers_only_the_pages_actions_and_remixes_only_its_video():
    proposal = schemas.proposal(
        ("remix",), max_chars=100, max_seconds=2, max_shots=4, video_id="video_1"
    )
    held_to(proposal)
    ok = {"action": {"type": "remix", "video_id": "video_1", "prompt": "now in snow"}}
    assert proposal.model_validate(ok).action.prompt == "now in snow"
    assert proposal.model_validate({"action": {"type": "none"}}).action.type == "none"
    for bad in (
        {"action": {"type": "remix", "video_id": "video_2", "prompt": "x"}},
        {"action": {"type": "fill_prompt", "prompt": "x"}},
    ):
        with pytest.raises(ValidationError):
            proposal.model_validate(bad)
    held_to(
        schemas.proposal(
            ("fill_prompt", "add_shots"), max_chars=100, max_seconds=2, max_shots=4, video_id=None
        )
    )


def test_a_written_prompt_has_exactly_three_variants_and_its_text_is_cleaned():
    written = schemas.written_prompt(50)
    held_to(written)
    answer = written.model_validate(
        {"prompt": "  a  corgi\x00 surfs ", "variants": ["one", "two", "three"]}
    )
    assert answer.prompt == "a corgi surfs"
    with pytest.raises(ValidationError):
        written.model_validate({"prompt": "a", "variants": ["one", "two"]})
    with pytest.raises(ValidationError):  # nothing left once cleaned
        written.model_validate({"prompt": "\x00 \x01", "variants": ["a", "b", "c"]})


# --- shot lengths ------------------------------------------------------------------------------


def test_shots_are_one_generation_long_and_as_many_as_the_total_needs():
    tiny = get_model("tiny")  # 33 frames at 16 fps: 2 s in one generation
    assert limits(tiny, None, 120) == Limits(2, 1, MAX_SHOTS, None)
    assert limits(tiny, 5, 120) == Limits(2, 3, 5, 5)
    with pytest.raises(InvalidRequestError, match="at most 48 s"):
        limits(tiny, 60, 120)
    with pytest.raises(InvalidRequestError) as refused:
        limits(tiny, 200, 120)
    assert refused.value.param == "seconds"


@pytest.mark.parametrize(
    ("lengths", "total", "longest", "fitted"),
    [
        ([2, 2, 1], 4, 2, [1, 2, 1]),
        ([1, 1], 4, 2, [2, 2]),
        ([5, 1, 1], 9, 5, [5, 2, 2]),
        ([3, 3, 3, 3], 4, 5, [1, 1, 1, 1]),
    ],
)
def test_shot_lengths_are_fitted_to_the_total_in_proportion(lengths, total, longest, fitted):
    assert fit_seconds(lengths, total, longest) == fitted


def test_a_small_context_allows_fewer_and_shorter_shots():
    shots = Limits(5, 1, MAX_SHOTS, None)
    # 8192 tokens of about four characters: 24 shots of 100 words or more.
    roomy, prompt_chars, _ = sized(shots, 8192, 4.0, 2000)
    assert roomy.max_shots == MAX_SHOTS and prompt_chars >= 600
    assert sized(Limits(5, 1, 2, None), 8192, 4.0, 2000)[1] == 2000  # the server's limit
    small, prompt_chars, hint_chars = sized(shots, 1024, 1.0, 2000)
    assert small.max_shots < MAX_SHOTS
    per_shot = 1024 // small.max_shots
    assert prompt_chars + hint_chars < per_shot


# --- long texts --------------------------------------------------------------------------------


def test_a_long_text_is_cut_at_paragraphs_into_pieces_that_fit():
    backend = remote()
    paragraphs = [f"Paragraph {i}. " + " ".join(["The fox runs."] * 40) for i in range(30)]
    text = "\n\n".join(paragraphs)
    pieces = chunks.split(backend, text, 400)
    assert len(pieces) > 1
    assert all(backend.count_tokens(piece) <= 400 for piece in pieces)
    assert all(piece.startswith("Paragraph") for piece in pieces)  # never mid-paragraph
    assert "\n\n".join(pieces) == text


def test_one_enormous_word_is_still_cut_to_fit():
    backend = remote()
    pieces = chunks.split(backend, "x" * 10_000, 100)
    assert "".join(pieces) == "x" * 10_000
    assert all(backend.count_tokens(piece) <= 100 for piece in pieces)


# --- what a conversation knows -----------------------------------------------------------------


def test_the_system_message_carries_the_page_the_video_and_what_the_creator_liked():
    video = VideoFacts(
        id="video_1",
        status="completed",
        kind="create",
        prompt="a heron at dawn",
        model="sora-2",
        size="1280x720",
        seconds="4",
        settings={"seed": 7},
        rating="down",
        rating_note="too dark",
        original_prompt=None,
    )
    page = PageContext(page="video", video_id="video_1")
    facts = Facts(page, video, "Birds", "Shoot at dawn", ("a kite over dunes",))
    message = system_message(facts)
    for expected in ("a heron at dawn", "disliked it: too dark", "seed 7", "Birds", "dunes"):
        assert expected in message
    assert facts.offers == ("remix",)
    # A video still rendering cannot be remixed: nothing is offered.
    queued = Facts(page, VideoFacts(**{**video.__dict__, "status": "queued"}))
    assert queued.offers == ()
    board = Facts(PageContext(page="storyboard", shots=[ShotContext(prompt="a fox", seconds=2)]))
    assert board.offers == ("add_shots",)
    assert "1. (2 s) a fox" in system_message(board)


def test_a_page_context_takes_only_its_fields():
    with pytest.raises(ValidationError):
        PageContext.model_validate({"page": "create", "secret": 1})
    with pytest.raises(ValidationError):
        PageContext.model_validate({"page": "elsewhere"})
