"""Bracketed form names, as the `openai` SDK flattens nested values, back into objects."""

from __future__ import annotations

import pytest

from moviola.api.forms import unflatten
from moviola.errors import InvalidRequestError


def test_plain_and_nested_fields():
    assert unflatten([("prompt", "p"), ("video[id]", "video_1")]) == {
        "prompt": "p",
        "video": {"id": "video_1"},
    }
    assert unflatten([("input_reference[image_url]", "data:,x")]) == {
        "input_reference": {"image_url": "data:,x"}
    }


def test_lists_of_objects_start_a_new_item_when_a_name_repeats():
    pairs = [("characters[][id]", "char_1"), ("characters[][id]", "char_2")]
    assert unflatten(pairs) == {"characters": [{"id": "char_1"}, {"id": "char_2"}]}
    pairs = [("a[][id]", "1"), ("a[][name]", "x"), ("a[][id]", "2")]
    assert unflatten(pairs) == {"a": [{"id": "1", "name": "x"}, {"id": "2"}]}
    assert unflatten([("tags[]", "a"), ("tags[]", "b")]) == {"tags": ["a", "b"]}
    assert unflatten([("a[0][id]", "1"), ("a[1][id]", "2")]) == {"a": [{"id": "1"}, {"id": "2"}]}


def test_names_that_are_not_brackets_are_kept_and_clashes_refused():
    assert unflatten([("odd]name", "v")]) == {"odd]name": "v"}
    with pytest.raises(InvalidRequestError):
        unflatten([("video[id]", "1"), ("video[]", "2")])
    with pytest.raises(InvalidRequestError):
        unflatten([("a[5]", "x")])
