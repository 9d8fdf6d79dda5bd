"""Placing jobs on Ray actors: model affinity (the cluster itself is tested in tests/cluster)."""

from __future__ import annotations

from moviola.jobs.ray.actor import actor_of
from moviola.jobs.ray.dispatcher import choose_actor


def test_an_actor_that_holds_the_model_is_preferred():
    loaded = {"a": ["wan"], "b": ["tiny"], "c": []}
    assert choose_actor("tiny", ["a", "b", "c"], loaded) == "b"


def test_else_an_empty_actor_so_that_no_loaded_pipeline_is_evicted():
    loaded = {"a": ["wan"], "b": [], "c": ["ltx"]}
    assert choose_actor("tiny", ["a", "b", "c"], loaded) == "b"


def test_else_any_free_actor_and_none_when_all_are_busy():
    assert choose_actor("tiny", ["a"], {"a": ["wan"]}) == "a"
    assert choose_actor("tiny", [], {"a": ["tiny"]}) is None


def test_a_lease_owner_names_its_actor():
    assert actor_of("moviola-render-3.a1b2c3") == "moviola-render-3"
    assert actor_of("worker-0-abc123") is None
    assert actor_of(None) is None
