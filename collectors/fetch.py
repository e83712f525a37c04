"""The one HTTP layer every collector uses: polite, bounded in time and size, and clear about failures.

Bounds: connect/read timeouts per operation plus a total deadline per response (a watchdog closes the socket,
so a server dripping a byte a second cannot hold us); a cap on the decompressed body (we inflate gzip
ourselves in bounded steps, so a gzip bomb is refused, not inflated); redirects followed by hand, only within
the site or to allowed hosts. Politeness: a User-Agent naming us, conditional GETs, robots.txt, per-host
concurrency and spacing. Failures raise TransientError (retry later), PermanentError or ContentError.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import mimetypes
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

import httpx

from collectors.robots import RobotsCache
from collectors.urls import same_site
from newsradar.errors import ContentError, NewsradarError, PermanentError, TransientError
from newsradar.settings import HttpSettings

logger = logging.getLogger(__name__)

_REDIRECTS = {301, 302, 303, 307, 308}
_STEP = 64 * 1024  # bytes inflated per step: memory stays bounded whatever the compression ratio
_MAX_CRAWL_DELAY = 60.0


@dataclass(frozen=True)
class FetchResult:
    """A response: ``url`` is the final URL after redirects; ``body`` is decompressed; headers lower-cased."""

    url: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None
    declared_charset: str | None = None


def _content_type(value: str | None) -> tuple[str | None, str | None]:
    """(mime type, charset) from a Content-Type header value."""
    if not value:
        return None, None
    msg = Message()
    msg["content-type"] = value
    charset = msg.get_param("charset")
    return msg.get_content_type(), (str(charset).strip() if charset else None)


def parse_retry_after(value: str | None, cap: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), capped; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), cap)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - datetime.now(UTC)).total_seconds()), cap)


class _HostGate:
    """Per-host concurrency (a semaphore) and spacing between request starts; thread-safe."""

    def __init__(self, concurrency: int, delay: float) -> None:
        self._concurrency = concurrency
        self._delay = delay
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._next_start: dict[str, float] = {}
        self._extra_delay: dict[str, float] = {}

    def set_crawl_delay(self, host: str, seconds: float) -> None:
        with self._lock:
            self._extra_delay[host] = min(seconds, _MAX_CRAWL_DELAY)

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        with self._lock:
            sem = self._slots.setdefault(host, threading.BoundedSemaphore(self._concurrency))
        with sem:
            with self._lock:  # reserve our start time, so concurrent callers queue up one delay apart
                now = time.monotonic()
                start = max(now, self._next_start.get(host, now))
                self._next_start[host] = start + max(self._delay, self._extra_delay.get(host, 0.0))
            if start > now:
                time.sleep(start - now)
            yield


class _Watchdog:
    """One thread that fires the deadlines of every response in flight (a heap ordered by time).

    A thread per request (threading.Timer) cost a thread start per poll: a millisecond of the 2 ms a 304
    takes. Callbacks run on this thread and must be quick (closing a socket is).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cancelled: set[int] = set()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, seconds: float, callback: Callable[[], None]) -> int:
        """Run ``callback`` in ``seconds`` unless ``cancel`` is called first; returns the token to cancel it."""
        with self._cond:
            token = next(self._ids)
            heapq.heappush(self._heap, (time.monotonic() + seconds, token, callback))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fetch-deadlines", daemon=True)
                self._thread.start()
            if self._heap[0][1] == token:
                self._cond.notify()
        return token

    def cancel(self, token: int) -> None:
        with self._cond:
            self._cancelled.add(token)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][1] in self._cancelled:
                    self._cancelled.discard(heapq.heappop(self._heap)[1])
                if not self._heap:
                    self._cond.wait()
                    continue
                when, token, callback = self._heap[0]
                delay = when - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
            callback()


_WATCHDOG = _Watchdog()


class _Deadline:
    """Total deadline of one response: when it passes, the connection's socket is shut under the reader."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sockets: list[Any] = []
        self.expired = False
        self._token = _WATCHDOG.add(seconds, self._expire)

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpx/httpcore trace hook: remember the socket of each new connection."""
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                with self._lock:
                    self._sockets.append(sock)
                    late = self.expired
                if late:
                    self._shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: Any) -> None:
        try:
            sock.shutdown(2)  # SHUT_RDWR: wakes a blocked recv with EOF
        except OSError:
            pass  # already closed: the response finished first

    def cancel(self) -> None:
        _WATCHDOG.cancel(self._token)


class _Inflater:
    """Content-Encoding decoder that inflates in bounded steps and enforces the decompressed size cap."""

    def __init__(self, encoding: str, cap: int, where: str) -> None:
        encoding = encoding.strip().lower()
        if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise ContentError(f"{where}: unsupported Content-Encoding {encoding!r}")
        self._wbits = 32 + zlib.MAX_WBITS  # auto-detects a gzip or zlib header
        self._z = zlib.decompressobj(self._wbits) if encoding not in ("", "identity") else None
        self._raw_deflate = encoding == "deflate"
        self._cap = cap
        self._where = where
        self._parts: list[bytes] = []
        self._size = 0
        self._started = False

    def _emit(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._cap:
            raise ContentError(
                f"{self._where}: body exceeds the {self._cap}-byte cap (decompressed); refused"
            )
        self._parts.append(data)

    def feed(self, data: bytes) -> None:
        if self._z is None:
            self._emit(data)
            return
        try:
            while data:
                self._emit(self._z.decompress(data, _STEP))
                data = self._z.unconsumed_tail
                if self._z.eof and self._z.unused_data:  # a second gzip member follows
                    data, self._z = self._z.unused_data, zlib.decompressobj(self._wbits)
            self._started = True
        except zlib.error as exc:
            if self._raw_deflate and not self._started:  # some servers send deflate without the zlib header
                self._z, self._wbits, self._started = (
                    zlib.decompressobj(-zlib.MAX_WBITS),
                    -zlib.MAX_WBITS,
                    True,
                )
                self.feed(data)
                return
            raise ContentError(f"{self._where}: corrupt compressed body ({exc})") from exc

    def finish(self) -> bytes:
        if self._z is not None:
            self._emit(self._z.flush())
        return b"".join(self._parts)


class Fetcher:
    """The shared HTTP client. Thread-safe: collectors on several threads may call ``get`` at once."""

    def __init__(self, http: HttpSettings) -> None:
        self._settings = http
        timeout = httpx.Timeout(
            connect=http.connect_timeout,
            read=http.read_timeout,
            write=http.read_timeout,
            pool=http.total_timeout,
        )
        # No keep-alive: the total-deadline watchdog needs the socket of every request, which httpx only
        # reports for new connections. A poller making a few requests per host per interval loses nothing.
        self._client = httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=0),
            headers={"User-Agent": http.user_agent, "Accept-Encoding": "gzip, deflate"},
            trust_env=False,
        )
        self._gate = _HostGate(http.per_host_concurrency, http.per_host_delay)
        self._robots = RobotsCache(http.user_agent, self._fetch_robots)

    def close(self) -> None:
        """Close the connection pool; called once at shutdown."""
        self._client.close()

    def get(
        self,
        url: str,
        *,
        source: str,
        etag: str | None = None,
        last_modified: str | None = None,
        allowed_hosts: Sequence[str] = (),
        check_robots: bool = False,
        headers: Mapping[str, str] | None = None,
        error_bodies: bool = False,
    ) -> FetchResult:
        """GET ``url`` for ``source`` (named in every error); conditional when validators are given.

        ``headers`` are sent as well (API credentials: never logged). With ``error_bodies`` a 4xx/5xx answer
        is returned (status and body) instead of raised, for APIs that explain their errors in the body.

        Returns a FetchResult (``not_modified`` on 304). Errors are raised, not logged here (the caller logs
        them once, with its context); their messages name the source and URL. Raises TransientError
        (timeouts, connection errors, 408/429/5xx, with ``retry_after`` from Retry-After), PermanentError
        (other 4xx, robots.txt disallows, redirect loop or to a host not allowed) or ContentError (body over
        the cap, bad compression).
        """
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError:
            scheme = ""
        if scheme == "file":
            return self._get_file(url, source)
        if scheme not in ("http", "https"):
            raise self._fail(
                PermanentError(f"{source}: unsupported URL {url!r} (expected http, https or file)")
            )
        headers = dict(headers or {})
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            result = self._follow(url, source, headers, allowed_hosts, check_robots, error_bodies)
        except NewsradarError as exc:
            logger.debug("%s", exc)  # callers log it once, with their context
            raise
        if result.not_modified:
            return FetchResult(
                result.url,
                result.status,
                result.headers,
                b"",
                True,
                result.etag or etag,
                result.last_modified or last_modified,
            )
        return result

    @staticmethod
    def _fail(exc: NewsradarError) -> NewsradarError:
        logger.debug("%s", exc)
        return exc

    def _follow(
        self,
        url: str,
        source: str,
        headers: dict[str, str],
        allowed: Sequence[str],
        check_robots: bool,
        error_bodies: bool = False,
    ) -> FetchResult:
        origin = urlsplit(url).hostname or ""
        visited = {url}
        current = url
        for _ in range(self._settings.max_redirects + 1):
            if check_robots and self._settings.respect_robots:
                self._check_robots(current, source)
            result = self._once(current, source, headers, error_bodies)
            if result.status not in _REDIRECTS:
                return result
            location = result.headers.get("location")
            if not location:
                raise PermanentError(
                    f"{source}: {current} answered {result.status} without a Location header"
                )
            try:
                target = urljoin(current, location.strip())
                parts = urlsplit(target)
            except ValueError as exc:
                raise PermanentError(f"{source}: {current} redirects to an invalid URL {location!r}") from exc
            if parts.scheme not in ("http", "https"):
                raise PermanentError(
                    f"{source}: {current} redirects to {target!r}; not an http(s) URL, not followed"
                )
            host = parts.hostname or ""
            if not same_site(host, origin) and not any(same_site(host, h) for h in allowed):
                raise PermanentError(
                    f"{source}: {current} redirects to another host ({host}), not followed; "
                    f"add it to the source's allowed_hosts if it is legitimate"
                )
            if target in visited:
                raise PermanentError(f"{source}: redirect loop at {target} (from {url})")
            visited.add(target)
            current = target
        raise PermanentError(f"{source}: more than {self._settings.max_redirects} redirects from {url}")

    def _check_robots(self, url: str, source: str) -> None:
        delay = self._robots.check(url, source)
        if delay:
            self._gate.set_crawl_delay((urlsplit(url).netloc or "").lower(), delay)

    def _fetch_robots(self, robots_url: str) -> tuple[int, bytes]:
        result = self._follow(robots_url, "robots.txt", {}, (), False)
        return result.status, result.body

    def _once(self, url: str, source: str, headers: dict[str, str], error_bodies: bool = False) -> FetchResult:
        """One request, no redirects followed; maps every failure onto our error tree."""
        host = (urlsplit(url).netloc or "").lower()
        where = f"{source}: {url}"
        with self._gate.slot(host):
            deadline = _Deadline(self._settings.total_timeout)
            try:
                return self._exchange(url, where, headers, deadline, error_bodies)
            except httpx.HTTPError as exc:
                raise self._classify(exc, where, deadline.expired) from exc
            finally:
                deadline.cancel()

    def _classify(self, exc: httpx.HTTPError, where: str, deadline_expired: bool) -> NewsradarError:
        """Our error for an httpx failure (the watchdog closing the socket shows up as a read error)."""
        if deadline_expired:
            return TransientError(f"{where}: no complete response within {self._settings.total_timeout}s")
        if isinstance(exc, httpx.TimeoutException):
            return TransientError(f"{where}: timed out ({type(exc).__name__})")
        if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
            return PermanentError(f"{where}: invalid URL ({exc})")
        if isinstance(exc, httpx.RemoteProtocolError) and "location header" in str(exc).lower():
            # httpx validates Location even when it is not following redirects
            return PermanentError(f"{where}: redirects to an invalid URL ({exc})")
        return TransientError(f"{where}: connection failed ({type(exc).__name__}: {exc})")

    def _exchange(
        self, url: str, where: str, headers: dict[str, str], deadline: _Deadline, error_bodies: bool = False
    ) -> FetchResult:
        with self._client.stream(
            "GET", url, headers=headers, extensions={"trace": deadline.trace}
        ) as response:
            lowered = {k.lower(): v for k, v in response.headers.multi_items()}
            status = response.status_code
            final = str(response.url)
            etag, last_modified = lowered.get("etag"), lowered.get("last-modified")
            if status in _REDIRECTS or status == 304:
                return FetchResult(final, status, lowered, b"", status == 304, etag, last_modified)
            if not error_bodies:
                self._raise_for_status(status, lowered, where)
            body = self._read_body(response, lowered, where, deadline)
        mime, charset = _content_type(lowered.get("content-type"))
        return FetchResult(final, status, lowered, body, False, etag, last_modified, mime, charset)

    def _read_body(
        self, response: httpx.Response, headers: dict[str, str], where: str, deadline: _Deadline
    ) -> bytes:
        """The decompressed body, refused past the size cap or the total deadline."""
        cap = self._settings.max_bytes
        encoding = headers.get("content-encoding", "")
        declared = headers.get("content-length", "")
        if not encoding and declared.isascii() and declared.isdigit() and int(declared) > cap:
            raise ContentError(f"{where}: Content-Length {declared} exceeds the {cap}-byte cap")
        inflater = _Inflater(encoding, cap, where)
        for chunk in response.iter_raw(_STEP):
            inflater.feed(chunk)
            if deadline.expired:
                break
        if deadline.expired:
            raise TransientError(f"{where}: no complete response within {self._settings.total_timeout}s")
        return inflater.finish()

    def _raise_for_status(self, status: int, headers: dict[str, str], where: str) -> None:
        if 200 <= status < 300:
            return
        if status in (408, 429) or status >= 500:
            retry_after = parse_retry_after(headers.get("retry-after"), self._settings.max_retry_after)
            hint = f"; retry after {retry_after:.0f}s" if retry_after is not None else ""
            raise TransientError(f"{where}: HTTP {status}{hint}", retry_after=retry_after)
        raise PermanentError(f"{where}: HTTP {status}")

    def _get_file(self, url: str, source: str) -> FetchResult:
        """Read a file:// URL (the offline demo) with the same size cap; no validators."""
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise self._fail(PermanentError(f"{source}: {url}: file URLs must be local"))
        path = url2pathname(parts.path)
        try:
            with open(path, "rb") as fh:
                body = fh.read(self._settings.max_bytes + 1)
        except OSError as exc:
            raise self._fail(PermanentError(f"{source}: cannot read {path}: {exc.strerror or exc}")) from exc
        if len(body) > self._settings.max_bytes:
            raise self._fail(
                ContentError(f"{source}: {url}: file exceeds the {self._settings.max_bytes}-byte cap")
            )
        mime, _ = mimetypes.guess_type(path)
        return FetchResult(url, 200, {}, body, False, None, None, mime, None)
