"""Storyboards in the engine: shots rendered in turn, joined with no frame repeated."""

import numpy as np
import pytest
from PIL import Image

from moviola.engine import GenerationRequest, Stage
from moviola.engine.storyboard import (
    MAX_SHOTS,
    StoryboardShot,
    generate_storyboard,
    plan_storyboard,
)
from moviola.errors import InvalidRequestError

BASE = GenerationRequest(prompt="", model="tiny", size=(160, 96), seed=5)


def test_shots_join_into_one_video_and_each_is_kept(engine):
    shots = [
        StoryboardShot("a fox wakes up", 1),
        StoryboardShot("it runs into the snow", 0.5),
        StoryboardShot("a red door", 0.5, image=Image.new("RGB", (160, 96), (220, 20, 20))),
    ]
    reports = []
    board = generate_storyboard(engine, shots, BASE, on_progress=reports.append)

    fps = board.result.fps
    lengths = [len(shot.frames) for shot in board.shots]
    assert lengths == [fps, fps // 2, fps // 2]  # exactly what each shot asked for
    assert [shot.start_frame for shot in board.shots] == [0, fps, fps + fps // 2]
    assert np.array_equal(board.result.frames, np.concatenate([s.frames for s in board.shots]))
    assert board.result.seed == 5 and board.result.size == (160, 96)
    # One bar over the whole storyboard: it never goes back, and only the end says done.
    fractions = [r.fraction for r in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert [r.stage for r in reports].count(Stage.DONE) == 1
    assert {r.segment for r in reports} == {0, 1, 2} and reports[0].segments == 3


def test_a_continuing_shot_starts_from_the_last_frame_before_it(engine, monkeypatch):
    seen = []
    original = engine.generate

    def spy(request, **kwargs):
        seen.append(request)
        return original(request, **kwargs)

    monkeypatch.setattr(engine, "generate", spy)
    shots = [StoryboardShot("a kite", 0.5), StoryboardShot("it falls", 0.5)]
    board = generate_storyboard(engine, shots, BASE)
    assert seen[0].extend is None and seen[0].prompt == "a kite"
    assert seen[1].prompt == "it falls"
    assert np.array_equal(seen[1].extend[-1], board.shots[0].frames[-1])
    assert seen[1].seed != seen[0].seed  # each shot its own noise


def test_the_same_seed_renders_the_same_storyboard(engine):
    shots = [StoryboardShot("rain", 0.5), StoryboardShot("sun", 0.5)]
    a = generate_storyboard(engine, shots, BASE)
    b = generate_storyboard(engine, shots, BASE)
    assert np.array_equal(a.result.frames, b.result.frames)


@pytest.mark.parametrize(
    ("shots", "param", "words"),
    [
        ([], "shots", "1 to"),
        ([StoryboardShot("x", 1)] * (MAX_SHOTS + 1), "shots", "1 to"),
        ([StoryboardShot("fine", 1), StoryboardShot("  ", 1)], "shots[1].prompt", "shot 2"),
        ([StoryboardShot("fine", -1)], "shots[0].seconds", "shot 1"),
        ([StoryboardShot("long", 80), StoryboardShot("longer", 80)], "shots", "limit"),
    ],
)
def test_a_bad_storyboard_is_refused_before_anything_renders(shots, param, words):
    with pytest.raises(InvalidRequestError) as caught:
        plan_storyboard(shots, BASE)
    assert caught.value.param == param and words in caught.value.message
