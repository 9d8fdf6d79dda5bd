"""Errors the engine raises; all are `MoviolaError`s with a code and, where it fits, a param."""

from __future__ import annotations

from moviola.errors import InvalidRequestError, MoviolaError


class UnknownModelError(InvalidRequestError):
    code = "model_not_found"

    def __init__(self, message: str):
        super().__init__(message, param="model")


class UnsupportedInputError(InvalidRequestError):
    """The model cannot start from what was given (an image to a text-only model, say)."""

    code = "unsupported_input"


class WeightsNotFoundError(MoviolaError):
    """The model is known but its weights are not on this machine and cannot be fetched."""

    code = "model_not_downloaded"


class GenerationCancelled(MoviolaError):
    code = "cancelled"

    def __init__(self, message: str = "generation was cancelled"):
        super().__init__(message)


class GenerationError(MoviolaError):
    """The model failed while generating (out of memory, a bad checkpoint …)."""

    code = "generation_failed"
