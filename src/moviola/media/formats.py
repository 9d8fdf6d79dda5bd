"""Media types and the file suffixes that go with them: one table for every part of Moviola.

A file is stored and served under the type its bytes have; its name (in the blob folder, in an
export, in a download's `content-disposition`) takes the suffix this table gives that type.
"""

from __future__ import annotations

# Media type → the suffix a file of that type is named with.
SUFFIXES: dict[str, str] = {
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "video/x-matroska": ".mkv",
    "video/x-msvideo": ".avi",
    "video/ogg": ".ogv",
    "video/x-flv": ".flv",
    "video/x-ms-asf": ".asf",
    "video/mp2t": ".ts",
    "video/mpeg": ".mpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/jpeg": ".jpg",
    "image/png": ".png",
}

# The names videos of the types above go by: what a file is called is only a hint, taken where
# its bytes must not be read (an archive entry refused unread) or say nothing (a damaged file,
# reported as the video it claims to be rather than passed over).
VIDEO_SUFFIXES: frozenset[str] = frozenset(
    {suffix for media_type, suffix in SUFFIXES.items() if media_type.startswith("video/")}
    | {SUFFIXES["image/gif"], ".m4v", ".mpeg"}
)

# Pillow's name for an image format → its media type (the still formats previews may have).
IMAGE_TYPES: dict[str, str] = {"WEBP": "image/webp", "JPEG": "image/jpeg", "PNG": "image/png"}


def suffix_for(media_type: str, default: str = "") -> str:
    """The suffix for `media_type`, or `default` for a type this table does not know."""
    return SUFFIXES.get(media_type, default)
