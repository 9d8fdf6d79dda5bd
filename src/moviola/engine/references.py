"""Reference images: pictures of a subject or a style that a generation is conditioned on.

Characters' frames and a request's own reference images reach the model the same way: as
`reference_images` of a reference-to-video model (Wan 2.1 VACE), each encoded by the VAE into a
latent frame of its own ahead of the video's. A model that takes none has a `reference_model`
in the catalogue that serves such requests for it; a request with references is planned on
that model (`route`), so what is rendered is what was checked. VACE also takes the first frame,
as frame 0 of its control video (`first_frame_control`), which is how a long video's later
segments continue with the same references.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from moviola.engine.catalogue import ModelSpec, catalogue, get_model
from moviola.engine.errors import UnsupportedInputError
from moviola.errors import InvalidRequestError

# The most references one call takes: each one is a latent frame more to denoise. Three
# reference images and two characters' three frames each.
MAX_REFERENCES = 9
PARAM = "reference_images"
# VACE's control video: grey where the model generates (0 in the VAE's -1..1 range), with a
# mask that is black where the control frame is kept and white where it is made.
_GREY = (128, 128, 128)
_KEEP, _MAKE = 0, 255


def route(spec: ModelSpec) -> ModelSpec:
    """The model that renders a request for `spec` with references: `spec` itself when it
    takes them, else its `reference_model`; an `UnsupportedInputError` when neither."""
    if spec.takes_references:
        return spec
    if spec.reference_model is None:
        able = sorted(
            model_id
            for model_id, entry in catalogue().items()
            if entry.takes_references or entry.reference_model
        )
        raise UnsupportedInputError(
            f"{spec.id} takes no characters or reference images, and no model serves them for "
            f"it; models that do: {', '.join(able)}",
            param=PARAM,
        )
    routed = get_model(spec.reference_model)
    if not routed.takes_references:  # a catalogue mistake, said plainly
        raise UnsupportedInputError(
            f"{spec.id}'s reference model {routed.id} takes no references", param=PARAM
        )
    return routed


def check(references: Sequence[Any]) -> None:
    """A request's references: at most `MAX_REFERENCES`, each a picture."""
    if len(references) > MAX_REFERENCES:
        raise InvalidRequestError(
            f"a video takes at most {MAX_REFERENCES} reference images, characters' frames "
            f"included (got {len(references)})",
            param=PARAM,
        )


def as_images(references: Sequence[Any]) -> list[Any]:
    """PIL RGB images of `references` (PIL images or uint8 H×W×3 arrays), as VACE takes them:
    it fits each into the frame itself, on white, keeping its shape."""
    from PIL import Image

    images = []
    for reference in references:
        if isinstance(reference, np.ndarray):
            reference = Image.fromarray(np.ascontiguousarray(reference[..., :3]))
        images.append(reference.convert("RGB"))
    return images


def first_frame_control(image: Any, frames: int) -> tuple[list[Any], list[Any]]:
    """VACE's control video and mask for a video that starts from `image` (a PIL image at the
    render size): the image kept as frame 0, every later frame made."""
    from PIL import Image

    size = image.size
    grey = Image.new("RGB", size, _GREY)
    keep, make = Image.new("L", size, _KEEP), Image.new("L", size, _MAKE)
    return [image, *[grey] * (frames - 1)], [keep, *[make] * (frames - 1)]


def pad_masks_for_every_reference(pipe: Any) -> None:
    """Make a `WanVACEPipeline`'s masks cover every reference image.

    diffusers 0.42 pads the mask with one latent frame per reference by slicing the video's own
    mask (`mask[:, :references]`), which has fewer frames than that when there are more
    references than latent frames (three references and a 5-frame segment, say): the mask then
    falls short of the latents and the call fails. Here the mask is built without references
    and padded with as many zero frames (a reference is conditioning, never generated) as there
    are references.
    """
    import torch

    made = pipe.prepare_masks
    if getattr(made, "pads_every_reference", False):
        return

    def prepare_masks(mask: Any, reference_images: Any = None, generator: Any = None) -> Any:
        if not reference_images:
            return made(mask, reference_images, generator)
        masks = made(mask, [[] for _ in reference_images], generator)
        count = len(reference_images[0])
        padding = masks.new_zeros((*masks.shape[:2], count, *masks.shape[3:]))
        return torch.cat([padding, masks], dim=2)

    prepare_masks.pads_every_reference = True  # type: ignore[attr-defined]
    pipe.prepare_masks = prepare_masks
