"""The error every layer raises for a problem the user can act on.

Each carries a stable `code` and, where one request field is to blame, its `param`, so the CLI
prints one line and the API answers in the OpenAI error envelope without guessing.
"""

from __future__ import annotations

import errno
import sqlite3

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class MoviolaError(Exception):
    """A clear, user-facing failure. `str(err)` is the one-line reason."""

    code: str = "moviola_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequestError(MoviolaError):
    """The request itself is wrong (a size, a duration, a prompt): fixing it is the user's move."""

    code = "invalid_request"


class MediaError(InvalidRequestError):
    """An image or video could not be read or written: corrupt, truncated, too large, not media."""

    code = "invalid_media"


class NotFoundError(MoviolaError):
    """No such thing, or not the caller's: the two answer alike so ids leak nothing."""

    code = "not_found"


class ConflictError(MoviolaError):
    """The thing exists but is in the wrong state for this (remixing an unfinished video)."""

    code = "conflict"


class TooLargeError(InvalidRequestError):
    code = "too_large"


class ServiceUnavailableError(MoviolaError):
    """A service this request depends on (the operator's moderation endpoint) did not answer:
    nothing the caller did wrong, and worth another try (the API answers 503)."""

    code = "service_unavailable"


class AssistantUnavailableError(ServiceUnavailableError):
    """The assistant's chat backend (this server's chat worker, or the operator's
    OpenAI-compatible server) is not ready, cannot be reached, failed, or missed its deadline.
    The message names the backend and why; the API answers 503."""

    code = "assistant_unavailable"


class AssistantInvalidOutputError(MoviolaError):
    """The assistant's model kept answering in a shape Moviola cannot use (JSON that does not
    match the schema), after being shown its mistake and asked again: the API answers 502."""

    code = "assistant_invalid_output"


class SigningError(MoviolaError):
    """Content credentials could not be signed: the signing identity needs the operator's
    attention; another attempt would fail the same way."""

    code = "signing_failed"


class TooManyRequestsError(MoviolaError):
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float, param: str | None = None):
        super().__init__(message, param=param)
        self.retry_after = retry_after


class InsufficientStorageError(MoviolaError):
    """The data dir's disk is full (or below the operator's reserve): nothing was written, and
    the request may succeed once space is freed (the API answers 507)."""

    code = "insufficient_storage"


def is_disk_full(err: BaseException | None) -> bool:
    """Whether `err`, or an error it was raised from, is a write refused for want of space:
    the system's ENOSPC or EDQUOT, SQLite's "database or disk is full", or PostgreSQL's
    disk_full (SQLSTATE 53100); SQLAlchemy wraps the last two."""
    for _ in range(8):  # chains are short; a cycle must not hang the answer
        if err is None:
            return False
        if isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS:
            return True
        if isinstance(err, sqlite3.Error) and "database or disk is full" in str(err):
            return True
        if getattr(err, "sqlstate", None) == "53100":  # psycopg's DiskFull
            return True
        err = err.__cause__ or err.__context__
    return False
