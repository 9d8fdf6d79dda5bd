"""Another Videos-API server as a source: its completed videos, with what it knows of them.

`GET /videos` is paged through to the end (`has_more`, `after`); each completed video's
`video`, `thumbnail` and `spritesheet` variants are streamed down when it is imported. The
server is treated as busy rather than broken when it says so: a 429 waits what its
`retry-after` asks, a 5xx or a dropped connection is tried again with growing pauses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import IO, Any
from urllib.parse import urlsplit

import httpx

from moviola.errors import MoviolaError
from moviola.importer.metadata import Recovered
from moviola.importer.sources import Candidate

MAX_ATTEMPTS = 6
FIRST_PAUSE_S = 0.5
MAX_PAUSE_S = 60.0
TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class RemoteError(MoviolaError):
    code = "remote_error"


class VideosApi:
    """A small client for the parts of the Videos API an import needs."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        page_size: int = 100,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = normalise(base_url)
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(headers=headers, timeout=TIMEOUT, follow_redirects=True)
        self.page_size = max(1, min(100, page_size))
        self.sleep = sleep
        self.requests = 0  # made, retries included: how hard the server was asked

    def close(self) -> None:
        self.client.close()

    def videos(self) -> Iterator[dict[str, Any]]:
        """Every video the key can see, oldest first, following `has_more` to the end."""
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": self.page_size, "order": "asc"}
            if after:
                params["after"] = after
            page = self._send("GET", "/videos", params=params).json()
            data = page.get("data") or []
            yield from data
            if not page.get("has_more") or not data:
                return
            after = page.get("last_id") or data[-1]["id"]

    def download(self, video_id: str, variant: str) -> IO[bytes]:
        """A readable stream of one variant's bytes (retried until the response starts)."""
        request = self.client.build_request(
            "GET", f"{self.base_url}/videos/{video_id}/content", params={"variant": variant}
        )
        response = self._with_retries(lambda: self.client.send(request, stream=True))
        return _Body(response)

    def candidates(self) -> Iterator[Candidate]:
        for video in self.videos():
            yield self.candidate(video)

    def candidate(self, video: dict[str, Any]) -> Candidate:
        recovered = Recovered()
        recovered.offer_mapping(video, "api")
        location = f"{self.base_url}/videos/{video.get('id')}"
        refused = None
        if video.get("status") != "completed":
            refused = f"not completed on the server (status {video.get('status')!r})"
        video_id = str(video.get("id"))
        return Candidate(
            location=location,
            name=f"{video_id}.mp4",
            source="api",
            size=None,
            open=lambda: self.download(video_id, "video"),
            metadata=recovered,
            previews={
                variant: (lambda variant=variant: self.download(video_id, variant))
                for variant in ("thumbnail", "spritesheet")
            },
            refused=refused,
        )

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._with_retries(
            lambda: self.client.request(method, f"{self.base_url}{path}", **kwargs)
        )
        return response

    def _with_retries(self, send: Callable[[], httpx.Response]) -> httpx.Response:
        pause = FIRST_PAUSE_S
        for attempt in range(1, MAX_ATTEMPTS + 1):
            last = attempt == MAX_ATTEMPTS
            self.requests += 1
            try:
                response = send()
            except httpx.TransportError as err:
                if last:
                    raise RemoteError(f"{self.base_url}: {type(err).__name__}: {err}") from err
                self.sleep(pause)
                pause = min(MAX_PAUSE_S, pause * 2)
                continue
            if response.status_code == 429 and not last:
                _discard(response)
                self.sleep(retry_after(response.headers, pause))
                pause = min(MAX_PAUSE_S, pause * 2)
                continue
            if response.status_code >= 500 and not last:
                _discard(response)
                self.sleep(pause)
                pause = min(MAX_PAUSE_S, pause * 2)
                continue
            if response.status_code >= 400:
                _discard(response)
                raise RemoteError(
                    f"{response.request.url}: HTTP {response.status_code} "
                    f"{_message(response)}".strip()
                )
            return response
        raise AssertionError("unreachable")


def normalise(base_url: str) -> str:
    """The API's base as the `openai` SDK takes it: `http://host:port` means `…/v1`."""
    url = base_url.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RemoteError(f"{base_url!r} is not an http(s) URL", param="from_api")
    if parts.path in ("", "/"):
        url += "/v1"
    return url


def retry_after(headers: httpx.Headers, default: float) -> float:
    """The wait a 429 asks for: `retry-after-ms`, `retry-after` seconds or an HTTP date."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return min(MAX_PAUSE_S, max(0.0, float(value) * scale))
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                when = parsedate_to_datetime(value).timestamp()
                return min(MAX_PAUSE_S, max(0.0, when - time.time()))
            except (TypeError, ValueError):
                continue
    return default


def _discard(response: httpx.Response) -> None:
    try:
        response.read()
    finally:
        response.close()


def _message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") or {}
        return str(error.get("message") or "")
    except (ValueError, AttributeError):
        return ""


class _Body:
    """A streamed response body as a readable file (what the importer copies from)."""

    def __init__(self, response: httpx.Response):
        self.response = response
        self._chunks = response.iter_bytes(1 << 20)
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.response.close()

    def __enter__(self) -> _Body:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
