"""Files served with HTTP ranges (players seek with them), refusing a bad range as an error the
application's own handlers answer, rather than in Starlette's plain text.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable


class RangedFileResponse(FileResponse):
    """A `FileResponse` whose unusable `Range` raises a 416 `HTTPException` carrying
    `Content-Range: bytes */SIZE`, as RFC 9110 asks, before anything is sent.

    A range in a unit other than bytes is ignored (the whole file is served): RFC 9110 says
    a server must ignore a unit it does not understand.
    """

    # Starlette's own parser, a private hook: the download tests notice if it ever changes.
    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        if http_range.split("=", 1)[0].strip().lower() != "bytes":
            return []
        try:
            return super()._parse_range_header(http_range, file_size)
        except RangeNotSatisfiable:
            message = f"the requested range is outside the file ({file_size:,} bytes)"
        except MalformedRangeHeader:
            message = f"the Range header {http_range[:100]!r} is malformed"
        raise HTTPException(416, message, headers={"content-range": f"bytes */{file_size}"})
