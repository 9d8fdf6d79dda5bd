"""How a render that raised ends: one rule for every executor (local worker, Ray actor).

A `MoviolaError` is the request's own fault or the operator's (a model this server lacks, a
source deleted meanwhile, a signing identity that is refused): another attempt would fail the
same way, so the job fails with its code. A full disk is nobody's fault and passes: the job
goes back to the queue. The model's own failure (`GenerationError`: out of memory, a driver
error) and anything unforeseen may pass too, and are retried until the job's attempts are used
up. A cancelled render is not a failure at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from moviola.engine import GenerationCancelled, GenerationError
from moviola.errors import InsufficientStorageError, MoviolaError, is_disk_full

GENERATION_FAILED = "generation_failed"


@dataclass(frozen=True)
class Failure:
    code: str
    message: str
    retry: bool


def classify(err: BaseException) -> Failure | None:
    """What `err` means for the job; None when the render was cancelled."""
    if isinstance(err, GenerationCancelled):
        return None
    if isinstance(err, InsufficientStorageError):
        return Failure(err.code, err.message, retry=True)
    if is_disk_full(err):
        return Failure(InsufficientStorageError.code, "the data dir's disk is full", retry=True)
    if isinstance(err, GenerationError):
        return Failure(err.code, err.message, retry=True)
    if isinstance(err, MoviolaError):
        return Failure(err.code, err.message, retry=False)
    return Failure(GENERATION_FAILED, f"{type(err).__name__}: {err}", retry=True)
