"""Download names: a slug of the prompt and the video's short id, ASCII first."""

from __future__ import annotations

import pytest

from moviola.studio.downloads import disposition, file_name

ID = "video_0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("prompt", "name"),
    [
        ("A paper boat on a pond!", "a-paper-boat-on-a-pond-01234567.mp4"),
        ('a "quoted"; name\\ with/slashes', "a-quoted-name-with-slashes-01234567.mp4"),
        ("東京の夜", "video-01234567.mp4"),  # no ASCII letters: only filename* names it
        (None, "video-01234567.mp4"),
        ("word " * 30, "-".join(["word"] * 12) + "-01234567.mp4"),  # whole words, ≤ 60
        ("x" * 80, "x" * 60 + "-01234567.mp4"),
    ],
)
def test_the_ascii_name_is_a_slug_of_the_prompt(prompt, name):
    assert file_name(prompt, ID, ".mp4") == name


def test_a_part_and_an_inline_file_are_named_the_same_way():
    assert disposition("a kite", ID, ".jpg", "spritesheet", attachment=False) == (
        'inline; filename="a-kite-01234567-spritesheet.jpg"'
    )


def test_a_name_beyond_ascii_is_also_sent_as_filename_star():
    assert disposition("Crème brûlée", ID, ".mp4") == (
        'attachment; filename="creme-brulee-01234567.mp4"; '
        "filename*=UTF-8''cr%C3%A8me-br%C3%BBl%C3%A9e-01234567.mp4"
    )
