"""What a request is conditioned on besides its prompt: its reference images and characters.

Intake checks them with the rest of the request (`gather`: 1–3 images that decode, characters
that are the caller's and named in the prompt), plans the request on the model that takes
references (the engine routes it: `moviola.engine.references`), and stores the images among
the job's inputs and the character ids in its params. A worker reads them back
(`load_for`): the images, then each character's frames, in that order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from moviola import media
from moviola.config import Settings
from moviola.engine import GenerationRequest, ModelSpec, Plan, plan
from moviola.engine.references import PARAM as ENGINE_PARAM
from moviola.engine.storyboard import StoryboardShot, plan_storyboard
from moviola.errors import InvalidRequestError
from moviola.jobs.characters import PARAM as CHARACTERS
from moviola.jobs.characters import Characters
from moviola.store.blobs import Blobs

if TYPE_CHECKING:
    from moviola.jobs.service import Upload

MAX_IMAGES = 3
IMAGES = "reference_images"


def reference_suffix(index: int) -> str:
    """The suffix of a request's reference image `index` (from 0) among its job's inputs."""
    return f".ref{index + 1}.img"


@dataclass(frozen=True)
class References:
    """A request's references: how many images it sent, which characters it names, and how
    many reference frames each of its calls takes (images and characters' frames)."""

    images: int = 0
    characters: tuple[str, ...] = ()
    frames: int = 0

    def __bool__(self) -> bool:
        return self.frames > 0

    @property
    def params(self) -> dict[str, Any]:
        """What a job's params keep of them."""
        kept: dict[str, Any] = {}
        if self.images:
            kept[IMAGES] = self.images
        if self.characters:
            kept[CHARACTERS] = list(self.characters)
        return kept

    def plan(self, request: GenerationRequest, spec: ModelSpec) -> Plan:
        with self._named():
            return plan(request, spec)

    def plan_storyboard(self, shots: list[StoryboardShot], base: GenerationRequest) -> list[Plan]:
        with self._named():
            return plan_storyboard(shots, base)

    @contextlib.contextmanager
    def _named(self) -> Iterator[None]:
        """The engine names references `reference_images`; a request that sent none but named
        characters hears of its `characters`."""
        try:
            yield
        except InvalidRequestError as err:
            if not self.images and err.param and err.param.endswith(ENGINE_PARAM):
                err.param = CHARACTERS
            raise


def gather(
    characters: Characters,
    owner: str | None,
    prompt: str,
    ids: Sequence[Any],
    images: Sequence[Upload],
    settings: Settings,
) -> tuple[References, dict[str, bytes]]:
    """A create's references, checked, and the images' bytes by the suffix they are stored
    under."""
    if len(images) > MAX_IMAGES:
        raise InvalidRequestError(
            f"give 1 to {MAX_IMAGES} reference images (got {len(images)})", param=IMAGES
        )
    stored: dict[str, bytes] = {}
    for index, upload in enumerate(images):
        name = f"{IMAGES}[{index}]"
        try:
            media.load_image(upload.data, max_pixels=settings.max_input_pixels, name=name)
        except InvalidRequestError as err:
            err.param = name
            raise
        stored[reference_suffix(index)] = upload.data
    rows = characters.for_prompt(owner, list(ids), prompt)
    found = References(
        images=len(images),
        characters=tuple(row.id for row in rows),
        frames=len(images) + characters.frames_of(rows),
    )
    return found, stored


def load_for(
    characters: Characters, blobs: Blobs, video_id: str, params: dict[str, Any]
) -> tuple[Any, ...]:
    """A stored job's references as PIL images: its own images, then its characters' frames."""
    images = [
        media.load_image(blobs.input_path(video_id, reference_suffix(index)))
        for index in range(int(params.get(IMAGES) or 0))
    ]
    return (*images, *characters.reference_images(params.get(CHARACTERS) or []))
