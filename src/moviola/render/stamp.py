"""What every MP4 Moviola writes gets after its frames are made: the operator's visible mark
(if any) burned into the frames, and C2PA content credentials signed into the file.

A worker (and `moviola generate`) builds one `Stamp` per process — loading the signing identity
is done once — and derives a per-job copy naming the video and the source video of a remix,
edit or extension.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moviola import __version__
from moviola.config import Settings
from moviola.media.provenance import Identity, load_identity, sign_video

GENERATOR = f"Moviola {__version__}"


@dataclass(frozen=True)
class Stamp:
    identity: Identity | None = None  # None: no content credentials
    watermark: str | None = None  # None or "": no visible mark
    edited_from: Path | None = None  # the source of a remix, edit or extension
    source_title: str | None = None
    source_media_type: str | None = None  # None: sniffed from the source's bytes
    video_id: str | None = None  # names the files in their manifests; None: the file's name

    @classmethod
    def from_settings(cls, settings: Settings) -> Stamp:
        identity = (
            load_identity(
                cert=settings.c2pa_cert,
                key=settings.c2pa_key,
                data_dir=settings.data_dir,
                trust_anchors=settings.c2pa_trust_anchors,
            )
            if settings.c2pa_sign
            else None
        )
        return cls(identity=identity, watermark=settings.watermark or None)

    def from_source(
        self, source: Path | None, title: str | None = None, media_type: str | None = None
    ) -> Stamp:
        """This stamp for a video made from `source` (None: made from nothing but a prompt),
        named `title` in the credentials; `media_type` is the source's (e.g. an imported
        video's recorded `mime`), sniffed from its bytes when not given."""
        return dataclasses.replace(
            self, edited_from=source, source_title=title, source_media_type=media_type
        )

    def for_video(self, video_id: str) -> Stamp:
        """This stamp for the video `video_id`: each manifest's title names the file after it
        (`video_….mp4`, a storyboard's `video_….shot1.mp4`), as a remix names its source."""
        return dataclasses.replace(self, video_id=video_id)

    def mark(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        if not self.watermark:
            yield from frames
            return
        from moviola.media.watermark import watermark_frames

        yield from watermark_frames(frames, self.watermark)

    def sign(self, path: Path, model_id: str) -> dict[str, Any] | None:
        """Sign the finished MP4; its credentials, or None when signing is off."""
        if self.identity is None:
            return None
        return sign_video(
            path,
            self.identity,
            generator=GENERATOR,
            model_id=model_id,
            model_licence=model_licence(model_id),
            edited_from=self.edited_from,
            source_title=self.source_title,
            source_media_type=self.source_media_type,
            title=f"{self.video_id}{''.join(Path(path).suffixes)}" if self.video_id else None,
        )


def model_licence(model_id: str) -> str | None:
    """The catalogue's licence of a model; None for a model given as a folder."""
    from moviola.engine import get_model
    from moviola.errors import MoviolaError

    try:
        return get_model(model_id).license
    except MoviolaError:
        return None
