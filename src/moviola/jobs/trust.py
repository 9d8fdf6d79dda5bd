"""What every MP4 Moviola writes gets after its frames are made: the operator's visible mark
(if any) burned into the frames, and C2PA content credentials signed into the file.

A worker (and `moviola generate`) builds one `Stamp` per process — loading the signing identity
is done once — and derives a per-job copy naming the source video of a remix, edit or
extension.
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

    def from_source(self, source: Path | None, title: str | None = None) -> Stamp:
        """This stamp for a video made from `source` (None: made from nothing but a prompt)."""
        return dataclasses.replace(self, edited_from=source, source_title=title)

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
        )


def model_licence(model_id: str) -> str | None:
    """The catalogue's licence of a model; None for a model given as a folder."""
    from moviola.engine import get_model
    from moviola.errors import MoviolaError

    try:
        return get_model(model_id).license
    except MoviolaError:
        return None
