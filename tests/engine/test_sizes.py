import pytest

from moviola.engine import get_model, parse_size
from moviola.engine.catalogue import FrameRule
from moviola.engine.sizes import plan_segments, render_size
from moviola.errors import InvalidRequestError


@pytest.mark.parametrize(
    ("text", "size"), [("1280x720", (1280, 720)), (" 720X1280 ", (720, 1280)), ("64x64", (64, 64))]
)
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "1280", "1280x", "axb", "1280x720x3", "-2x4", "1.5x2"])
def test_unparseable_size_names_the_param(text):
    with pytest.raises(InvalidRequestError, match="WIDTHxHEIGHT") as err:
        parse_size(text)
    assert err.value.param == "size"


@pytest.mark.parametrize("text", ["1281x720", "8x8", "8192x720"])
def test_odd_or_out_of_range_sizes_are_refused(text):
    with pytest.raises(InvalidRequestError) as err:
        parse_size(text)
    assert err.value.param == "size"


def test_a_native_aspect_renders_at_the_native_size():
    spec = get_model("tiny")
    assert render_size(spec, (1600, 960)) == (160, 96)
    assert render_size(spec, (720, 720)) == (128, 128)
    assert render_size(spec, None) == spec.native_sizes[0]


@pytest.mark.parametrize("size", [(1280, 720), (720, 1280), (1024, 1792), (1792, 1024)])
def test_sora_sizes_keep_their_aspect_at_a_size_the_model_accepts(size):
    spec = get_model("tiny")
    width, height = render_size(spec, size)
    assert width % spec.size_multiple == 0 and height % spec.size_multiple == 0
    assert (width > height) == (size[0] > size[1])
    assert abs(width / height - size[0] / size[1]) < 0.35  # tiny's sizes are coarse


def test_frame_rule():
    rule = FrameRule(4)
    assert [rule.at_least(n) for n in (1, 2, 5, 6, 80)] == [1, 5, 5, 9, 81]
    assert [rule.at_most(n) for n in (1, 4, 5, 83)] == [1, 1, 5, 81]
    assert rule.accepts(81) and not rule.accepts(80)


def test_one_segment_when_it_fits():
    assert [s.frames for s in plan_segments(64, FrameRule(4), 81)] == [65]


def test_long_videos_chain_segments_that_cover_exactly_enough():
    segments = plan_segments(200, FrameRule(4), 81)
    assert [s.frames for s in segments] == [81, 81, 41]
    assert [s.continues for s in segments] == [False, True, True]
    # Each continuation repeats the previous last frame first; it is dropped when stitching.
    stitched = segments[0].frames + sum(s.frames - 1 for s in segments[1:])
    assert stitched >= 200 and stitched - 200 < 4


def test_an_extension_only_continues():
    segments = plan_segments(100, FrameRule(4), 33, existing=40)
    assert all(s.continues for s in segments)
    assert 40 + sum(s.frames - 1 for s in segments) >= 100
