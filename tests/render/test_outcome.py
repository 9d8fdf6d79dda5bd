"""How a render that raised ends, for every executor alike."""

import errno

import pytest

from moviola.engine import GenerationCancelled, GenerationError
from moviola.errors import InsufficientStorageError, InvalidRequestError, SigningError
from moviola.render.outcome import GENERATION_FAILED, classify


def test_a_cancelled_render_is_no_failure():
    assert classify(GenerationCancelled()) is None


@pytest.mark.parametrize(
    ("err", "code"),
    [
        (GenerationError("ltx-2 failed while generating: CUDA out of memory"), GENERATION_FAILED),
        (RuntimeError("cuDNN error"), GENERATION_FAILED),
        (OSError(errno.ENOSPC, "No space left on device"), "insufficient_storage"),
        (InsufficientStorageError("below the reserve"), "insufficient_storage"),
    ],
)
def test_what_may_pass_is_retried(err, code):
    failure = classify(err)
    assert failure is not None and failure.retry and failure.code == code


@pytest.mark.parametrize(
    ("err", "code"),
    [
        (
            InvalidRequestError("the source video was deleted", code="source_deleted"),
            "source_deleted",
        ),
        (SigningError("the certificate is refused"), "signing_failed"),
    ],
)
def test_what_would_fail_the_same_way_again_fails_the_job(err, code):
    failure = classify(err)
    assert failure is not None and not failure.retry and failure.code == code
