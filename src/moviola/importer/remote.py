"""Another Videos-API server as a source: its completed videos, with what it knows of them.

`GET /videos` is paged through to the end (`has_more`, `after`), and each video is handed on
as soon as its page arrives; each completed video's `video`, `thumbnail` and `spritesheet`
variants are streamed down when it is imported. The server is treated as busy rather than
broken when it says so: a 429 or 5xx waits what its `retry-after` asks (up to a minute), else
it and a dropped connection are tried again with growing pauses. A listing that goes round in
circles, or answers with something that is not a listing, ends the listing with an error.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from moviola.errors import MoviolaError
from moviola.importer.metadata import Recovered
from moviola.importer.sources import Candidate, Stream

MAX_ATTEMPTS = 6
FIRST_PAUSE_S = 0.5
MAX_PAUSE_S = 60.0  # the longest wait, even when a server's `retry-after` asks for more
MAX_PAGES = 100_000  # of up to 100 videos: ten million, more than any library holds
TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class RemoteError(MoviolaError):
    code = "remote_error"
    location: str | None = None  # what the import report files it under


class VideosApi:
    """A small client for the parts of the Videos API an import needs."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        page_size: int = 100,
        max_bytes: int | None = None,
        max_pages: int = MAX_PAGES,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = normalise(base_url)
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(headers=headers, timeout=TIMEOUT, follow_redirects=True)
        self.page_size = max(1, min(100, page_size))
        self.max_bytes = max_bytes
        self.max_pages = max_pages
        self.sleep = sleep
        self.requests = 0  # made, retries included: how hard the server was asked

    def close(self) -> None:
        self.client.close()

    def videos(self) -> Iterator[dict[str, Any]]:
        """Every video the key can see, oldest first, following `has_more` to the end. A server
        whose cursor does not move (the same `after` again, a video listed twice) or whose
        listing never ends is an error, not a loop without end."""
        after: str | None = None
        afters: set[str] = set()
        seen: set[str] = set()
        for _ in range(self.max_pages):
            params: dict[str, Any] = {"limit": self.page_size, "order": "asc"}
            if after:
                params["after"] = after
            page, url = self._page(params)
            data = page.get("data")
            if data is None:
                data = []
            if not isinstance(data, list):
                raise RemoteError(f"{url}: `data` is not a list: not a Videos-API listing")
            for video in data:
                video_id = video.get("id") if isinstance(video, dict) else None
                if isinstance(video_id, str) and video_id in seen:
                    raise RemoteError(f"{url}: {video_id} was listed twice; the listing is looping")
                if isinstance(video_id, str):
                    seen.add(video_id)
                yield video
            if not page.get("has_more") or not data:
                return
            last = data[-1] if isinstance(data[-1], dict) else {}
            after = page.get("last_id") or last.get("id")
            if not isinstance(after, str) or not after:
                raise RemoteError(f"{url}: `has_more` without a `last_id` to go on from")
            if after in afters:
                raise RemoteError(f"{url}: the listing does not move on from {after}")
            afters.add(after)
        raise RemoteError(
            f"{self.base_url}/videos: more than {self.max_pages} pages of {self.page_size}"
        )

    def download(self, video_id: str, variant: str) -> Stream:
        """A readable stream of one variant's bytes (retried until the response starts); one
        over `max_bytes` is cut off with an error."""
        request = self.client.build_request(
            "GET",
            f"{self.base_url}/videos/{quote(video_id, safe='')}/content",
            params={"variant": variant},
        )
        response = self._with_retries(lambda: self.client.send(request, stream=True))
        return _Body(response, self.max_bytes)

    def candidates(self) -> Iterator[Candidate]:
        try:
            for video in self.videos():
                yield self.candidate(video)
        except RemoteError as err:
            err.location = err.location or f"{self.base_url}/videos"
            raise

    def candidate(self, video: Any) -> Candidate:
        video_id = video.get("id") if isinstance(video, dict) else None
        if not isinstance(video_id, str) or not video_id:
            shown = repr(video)
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            return Candidate(
                location=f"{self.base_url}/videos",
                name="",
                source="api",
                size=None,
                open=None,
                refused=f"not a video the listing could name (no id): {shown}",
            )
        recovered = Recovered()
        recovered.offer_mapping(video, "api")
        skipped = None
        if video.get("status") != "completed":
            skipped = f"not completed on the server (status {video.get('status')!r})"
        return Candidate(
            location=f"{self.base_url}/videos/{quote(video_id, safe='')}",
            name=f"{video_id}.mp4",
            source="api",
            size=None,
            open=lambda: self.download(video_id, "video"),
            metadata=recovered,
            previews={
                variant: partial(self.download, video_id, variant)
                for variant in ("thumbnail", "spritesheet")
            },
            skipped=skipped,
        )

    def _page(self, params: dict[str, Any]) -> tuple[dict[str, Any], str]:
        response = self._send("GET", "/videos", params=params)
        url = str(response.request.url)
        try:
            page = response.json()
        except ValueError:
            raise RemoteError(f"{url}: the answer is not JSON: not a Videos-API listing") from None
        if not isinstance(page, dict):
            raise RemoteError(f"{url}: the answer is not a JSON object: not a Videos-API listing")
        return page, url

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
            if (response.status_code == 429 or response.status_code >= 500) and not last:
                _discard(response)
                # A 429 or a 503 may say how long to wait; without it, pauses grow.
                self.sleep(retry_after(response.headers, pause))
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
    """The wait a 429 or 5xx asks for: `retry-after-ms`, `retry-after` seconds or an HTTP date
    (at most MAX_PAUSE_S); `default` when it asks for none."""
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
    """A streamed response body as a readable file (what the importer copies from), cut off
    with an error past `limit` bytes."""

    def __init__(self, response: httpx.Response, limit: int | None = None):
        self.response = response
        self.limit = limit
        self._chunks = response.iter_bytes(1 << 20)
        self._buffer = b""
        self._read = 0
        declared = response.headers.get("content-length", "")
        if limit is not None and declared.isdigit() and int(declared) > limit:
            self.close()
            raise self._too_large()

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._read += len(chunk)
            if self.limit is not None and self._read > self.limit:
                raise self._too_large()
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _too_large(self) -> RemoteError:
        return RemoteError(
            f"{self.response.request.url}: over {self.limit:,} bytes, the most one imported "
            "file may be (max_import_bytes)"
        )

    def seekable(self) -> bool:
        return False

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        raise io.UnsupportedOperation("a download is read once, from its start")

    def close(self) -> None:
        self.response.close()

    def __enter__(self) -> _Body:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
