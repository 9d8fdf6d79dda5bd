"""What a video file really is, from its bytes: container, media type, and its metadata tags.

The name a file arrives with is only a hint (exports and downloads get renamed); the library
stores and serves each video under the type its bytes have, as `media.sniff` tells it for every
part of Moviola.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from moviola.errors import MediaError
from moviola.media.probe import OPEN_OPTIONS
from moviola.media.sniff import sniff_file


@dataclass(frozen=True)
class Container:
    kind: str  # mp4 | mov | webm | mkv | gif | …: the type's usual suffix
    mime: str
    suffix: str
    tags: dict[str, str]


def read_container(path: Path) -> Container:
    import av

    try:
        with av.open(str(path), container_options=OPEN_OPTIONS) as container:
            tags = {str(k): str(v) for k, v in (container.metadata or {}).items()}
    except av.FFmpegError as err:
        raise MediaError(f"{path}: not a readable video ({err})") from err
    kind = sniff_file(path)
    if kind is None:  # FFmpeg reads it, but its first bytes are no signature Moviola knows
        return Container("video", "application/octet-stream", ".video", tags)
    return Container(kind.suffix.lstrip("."), kind.media_type, kind.suffix, tags)
