"""What a downloaded file is called: named after its prompt, so a folder of saved videos reads
as what they show. One home for the name, used by every Studio download (the video page's
files, a shared link's, and the members of the library's zip).

A name is an ASCII slug of the prompt (at most 60 characters) and the video's short id, which
keeps two videos of one prompt apart. A prompt that is not ASCII is also sent in full as the
RFC 5987 `filename*`, which browsers prefer; the ASCII `filename` is the fallback.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

SLUG_CHARS = 60
_NOT_WORD = re.compile(r"[^\w]+")


def short_id(video_id: str) -> str:
    """The first 8 characters of the id's random part (`video_1a2b…` → `1a2b…`)."""
    return video_id.rsplit("_", 1)[-1][:8]


def _slug(prompt: str, ascii_only: bool) -> str:
    text = unicodedata.normalize("NFKC", prompt)
    if ascii_only:
        # Accents dropped rather than the letters: "café" → "cafe".
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = _NOT_WORD.sub(" ", text.replace("_", " ")).split()
    slug = ""
    for word in words:
        longer = f"{slug}-{word}" if slug else word
        if len(longer) > SLUG_CHARS:
            break
        slug = longer
    # A first word longer than the limit is cut rather than lost.
    return (slug or "-".join(words)[:SLUG_CHARS]).lower()


def names(prompt: str | None, video_id: str, suffix: str, part: str = "") -> tuple[str, str]:
    """The file's ASCII name and its full (possibly non-ASCII) name: `prompt-slug-shortid`,
    then `-part` (a thumbnail, a shot) and the suffix. A prompt with no ASCII letters
    falls back to `video` in the ASCII name."""
    tail = f"-{short_id(video_id)}{f'-{part}' if part else ''}{suffix}"
    plain = _slug(prompt or "", ascii_only=True) or "video"
    full = _slug(prompt or "", ascii_only=False) or "video"
    return plain + tail, full + tail


def file_name(prompt: str | None, video_id: str, suffix: str, part: str = "") -> str:
    """The ASCII name alone: for zip members, which every unzip tool reads."""
    return names(prompt, video_id, suffix, part)[0]


def disposition(
    prompt: str | None, video_id: str, suffix: str, part: str = "", attachment: bool = True
) -> str:
    """The `Content-Disposition` header's value for the file."""
    plain, full = names(prompt, video_id, suffix, part)
    value = f'{"attachment" if attachment else "inline"}; filename="{plain}"'
    if full != plain:
        value += f"; filename*=UTF-8''{quote(full, safe='')}"
    return value
