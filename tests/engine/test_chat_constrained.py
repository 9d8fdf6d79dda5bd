"""Constrained decoding: with a `response_format`, llguidance masks every step's logits, so the
reply is JSON valid for the schema even from tiny-chat, whose weights are noise."""

from __future__ import annotations

import json

import jsonschema
import pytest
import torch

from moviola.engine.chat import ChatEngine, ChatParams
from moviola.engine.chat_models import TINY_CHAT_ID
from moviola.errors import InvalidRequestError

STORYBOARD = {
    "type": "object",
    "properties": {
        "shots": {
            "type": "array",
            "minItems": 2,
            "maxItems": 4,
            "items": {
                "type": "object",
                "properties": {
                    # Capped so that a model writing noise closes its strings in time.
                    "prompt": {"type": "string", "minLength": 1, "maxLength": 40},
                    "seconds": {"type": "integer", "minimum": 1, "maximum": 8},
                },
                "required": ["prompt", "seconds"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["shots"],
    "additionalProperties": False,
}
ASK = [
    {"role": "system", "content": "Answer with a storyboard as JSON."},
    {"role": "user", "content": "A lighthouse keeper finds a message in a bottle."},
]


def as_schema(schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "storyboard", "schema": schema}}


@pytest.fixture(scope="module")
def chat():
    # One thread, as the server's workers run: on a small shared CPU, torch's thread pool
    # spinning against other processes makes a tiny model's steps ten times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield ChatEngine(TINY_CHAT_ID, device="cpu")
    torch.set_num_threads(threads)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_storyboard_is_valid_json_for_its_schema_whatever_the_seed(chat, seed):
    reply = chat.generate(
        ASK, ChatParams(max_tokens=600, seed=seed, response_format=as_schema(STORYBOARD))
    )
    text = reply.text()
    jsonschema.validate(json.loads(text), STORYBOARD)
    # The grammar, not the token budget, ended it.
    assert reply.finish_reason == "stop"


def test_json_object_is_a_json_object(chat):
    reply = chat.generate(
        ASK, ChatParams(max_tokens=600, seed=2, response_format={"type": "json_object"})
    )
    found = json.loads(reply.text())
    assert isinstance(found, dict) and found  # seed 2 writes a member (others write {})
    assert reply.finish_reason == "stop"


def test_the_token_budget_still_ends_a_constrained_reply_with_length(chat):
    reply = chat.generate(
        ASK, ChatParams(max_tokens=14, seed=0, response_format=as_schema(STORYBOARD))
    )
    text = reply.text()
    assert (reply.completion_tokens, reply.finish_reason) == (14, "length")
    assert text.startswith('{"shots":[{')  # on its way to valid JSON, cut short
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_a_schema_the_grammar_compiler_refuses_is_a_clear_request_error(chat):
    broken = {"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}}
    with pytest.raises(InvalidRequestError, match="JSON schema cannot be used") as err:
        chat.generate(ASK, ChatParams(max_tokens=8, response_format=as_schema(broken)))
    assert err.value.param == "response_format"
