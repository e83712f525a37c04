"""A real HTTP server on 127.0.0.1 (port 0) for tests: fixture feeds and pages, 304s, slow, hostile answers.

Use the function-scoped ``http_server`` fixture::

    def test_feed(http_server):
        http_server.add("/feed.xml", FEED, headers={"Content-Type": "text/xml; charset=euc-kr"}, etag='"v1"')
        url = http_server.url("/feed.xml")
        ...
        assert http_server.requests[-1].headers["if-none-match"] == '"v1"'

Routes (``add`` replaces an existing route with the same path, so a test can change a feed between polls; a
route path may carry a query string, matched exactly before the bare path):

- ``etag`` / ``last_modified``: sent as validators; a request whose If-None-Match matches ``etag`` (or, with
  no If-None-Match, whose If-Modified-Since is not older than ``last_modified``) gets ``304 Not Modified``.
- ``redirect_to``: answer ``status`` (302 unless a 3xx is given) with ``Location: redirect_to`` (absolute or
  relative).
- ``delay``: seconds to wait before answering; ``drip_bytes_per_sec``: send headers, then the body a byte at
  a time.
- ``gzip``: compress the body on the fly (``Content-Encoding: gzip``); for a pre-compressed body such as
  ``gzip_bomb(...)`` pass ``headers={"Content-Encoding": "gzip"}`` instead.
- ``never_answer``: accept the connection, read the request, then send nothing until the test ends.
- ``truncate_at``: announce the full Content-Length but close the connection after that many body bytes.
- ``raw``: ``body`` is the whole response (status line, headers, body) written as is, dripped if
  ``drip_bytes_per_sec`` is set (a server that drips its headers), then the connection is closed.
- ``body`` may be bytes or a zero-argument callable returning an iterable of byte chunks (streamed with
  chunked transfer encoding, never held in memory), e.g. ``repeat_bytes(100_000_000)``.

``http_server.robots(text)`` serves a robots.txt; unknown paths get 404.
``http_server.url(path, host="localhost")`` gives the same server under another host name (for cross-host
redirect tests). Every request is recorded in ``http_server.requests`` (method, path with query, lower-cased
headers, body); ``max_in_flight`` is the most requests answered at once. Shut-down is clean: hanging and
dripping handlers are released and their sockets closed when the test ends.
"""

from __future__ import annotations

import gzip as gzip_module
import socket
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import pytest

Body = bytes | Callable[[], Iterable[bytes]]


@dataclass
class Route:
    """How one path answers; see the module docstring for the meaning of each field."""

    body: Body = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0
    drip_bytes_per_sec: float | None = None
    gzip: bool = False
    redirect_to: str | None = None
    never_answer: bool = False
    truncate_at: int | None = None
    raw: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


def repeat_bytes(total: int, chunk: bytes = b"<p>" + b"x" * 8189 + b"\n") -> Callable[[], Iterator[bytes]]:
    """A lazily generated body of ``total`` bytes (e.g. 100 MB) that is never held in memory at once."""

    def generate() -> Iterator[bytes]:
        left = total
        while left > 0:
            piece = chunk[:left]
            left -= len(piece)
            yield piece

    return generate


def gzip_bomb(decompressed_size: int) -> bytes:
    """A small gzip stream inflating to ``decompressed_size`` zero bytes (serve as Content-Encoding: gzip)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"\0" * (1 << 20)
    parts = []
    left = decompressed_size
    while left > 0:
        piece = zeros[: min(left, len(zeros))]
        parts.append(compressor.compress(piece))
        left -= len(piece)
    parts.append(compressor.flush())
    return b"".join(parts)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet; requests are recorded instead

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_POST(self) -> None:
        self._serve(send_body=True)

    def _serve(self, send_body: bool) -> None:
        owner = self.server.owner
        owner._enter()
        try:
            self._answer(send_body)
        finally:
            owner._leave()

    def _answer(self, send_body: bool) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        owner._record(RecordedRequest(self.command, self.path, headers, payload))
        route = owner._route(self.path)
        if route is None:
            self._simple(404, b"not found\n", send_body)
            return
        if route.never_answer:
            owner._stop.wait()  # hold the connection open, silent, until the test ends
            self.close_connection = True
            return
        if route.delay and owner._stop.wait(route.delay):
            self.close_connection = True
            return
        if route.raw:
            self.close_connection = True
            if route.drip_bytes_per_sec:
                self._drip(route.body, route.drip_bytes_per_sec)  # type: ignore[arg-type]
            else:
                self.wfile.write(route.body)  # type: ignore[arg-type]
            return
        if route.redirect_to is not None:
            status = route.status if 300 <= route.status < 400 else 302
            self._simple(status, b"", send_body, {"Location": route.redirect_to, **route.headers})
            return
        if self._not_modified(route, headers):
            extra = {"ETag": route.etag} if route.etag else {}
            self.send_response(304)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send_route(route, send_body)

    @staticmethod
    def _not_modified(route: Route, headers: dict[str, str]) -> bool:
        inm = headers.get("if-none-match")
        if inm is not None:
            tags = {t.strip() for t in inm.split(",")}
            return route.etag is not None and (route.etag in tags or "*" in tags)
        ims = headers.get("if-modified-since")
        if ims and route.last_modified:
            try:
                return parsedate_to_datetime(ims) >= parsedate_to_datetime(route.last_modified)
            except (TypeError, ValueError):
                return False
        return False

    def _simple(
        self, status: int, body: bytes, send_body: bool, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _send_route(self, route: Route, send_body: bool) -> None:
        streamed = callable(route.body)
        body = b"" if streamed else route.body  # type: ignore[assignment]
        if route.gzip and not streamed:
            body = gzip_module.compress(body)  # type: ignore[arg-type]
        self.send_response(route.status)
        headers = dict(route.headers)
        headers.setdefault("Content-Type", "text/html; charset=utf-8")
        if route.gzip:
            headers["Content-Encoding"] = "gzip"
        if route.etag:
            headers["ETag"] = route.etag
        if route.last_modified:
            headers["Last-Modified"] = route.last_modified
        for name, value in headers.items():
            self.send_header(name, value)
        if streamed:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))  # type: ignore[arg-type]
        self.end_headers()
        if not send_body:
            return
        if streamed:
            self._send_chunked(route)
        elif route.truncate_at is not None:
            self.wfile.write(body[: route.truncate_at])  # type: ignore[index]
            self.close_connection = True
        elif route.drip_bytes_per_sec:
            self._drip(body, route.drip_bytes_per_sec)  # type: ignore[arg-type]
        else:
            self.wfile.write(body)  # type: ignore[arg-type]

    def _send_chunked(self, route: Route) -> None:
        compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS) if route.gzip else None
        for piece in route.body():  # type: ignore[operator]
            if self.server.owner._stop.is_set():
                self.close_connection = True
                return
            data = compressor.compress(piece) if compressor else piece
            if data:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        if compressor:
            tail = compressor.flush()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(tail), tail))
        self.wfile.write(b"0\r\n\r\n")

    def _drip(self, body: bytes, rate: float) -> None:
        pause = 1.0 / rate
        for i in range(len(body)):
            self.wfile.write(body[i : i + 1])
            self.wfile.flush()
            if self.server.owner._stop.wait(pause):
                self.close_connection = True
                return


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # we join handler threads ourselves, with a bound, in HttpServer.close()
    owner: HttpServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # the client went away (broken pipe, reset, our own shutdown): expected in these tests
        super().handle_error(request, client_address)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.owner._track(request)
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        self.owner._threads_add(threading.current_thread())
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.owner._untrack(request)


class HttpServer:
    """A threaded stdlib HTTP server with routes registered by the test; see the module docstring."""

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0  # most requests being answered at the same moment (per-host concurrency tests)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    # -- registering routes -----------------------------------------------------------------------
    def add(
        self,
        path: str,
        body: Body = b"",
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        delay: float = 0.0,
        drip_bytes_per_sec: float | None = None,
        gzip: bool = False,
        redirect_to: str | None = None,
        never_answer: bool = False,
        truncate_at: int | None = None,
        raw: bool = False,
    ) -> Route:
        """Serve ``path`` as described; replaces any route already at ``path``.

        ``path`` may include a query string ("/view?id=1"): a request matches a route with its exact path and
        query first, then the route for its path alone.
        """
        route = Route(
            body,
            status,
            dict(headers or {}),
            etag,
            last_modified,
            delay,
            drip_bytes_per_sec,
            gzip,
            redirect_to,
            never_answer,
            truncate_at,
            raw,
        )
        with self._lock:
            self._routes[path] = route
        return route

    def remove(self, path: str) -> None:
        """Stop serving ``path`` (it answers 404 again)."""
        with self._lock:
            self._routes.pop(path, None)

    def robots(self, text: str) -> Route:
        """Serve ``text`` as /robots.txt."""
        return self.add("/robots.txt", text.encode("utf-8"), headers={"Content-Type": "text/plain"})

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        """Absolute URL of ``path`` here; ``host="localhost"`` reaches this server under another host name."""
        return f"http://{host}:{self.port}{path}"

    # -- inspecting -------------------------------------------------------------------------------
    def hits(self, path: str) -> int:
        """How many requests asked for ``path`` (query string ignored)."""
        with self._lock:
            return sum(1 for r in self.requests if r.path.split("?", 1)[0] == path)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.split("?", 1)[0] == path]

    # -- internals used by the handler ----------------------------------------------------------
    def _route(self, path: str) -> Route | None:
        with self._lock:
            return self._routes.get(path) or self._routes.get(path.split("?", 1)[0])

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def _threads_add(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads.append(thread)

    def close(self) -> None:
        """Release hanging handlers, close every client socket, stop serving, and join the threads."""
        self._stop.set()
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # unblocks handlers stuck in a read or a write
            except OSError:
                pass
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        deadline = time.monotonic() + 5
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    """A fresh real HTTP server on 127.0.0.1:<random port>, shut down when the test ends."""
    server = HttpServer()
    try:
        yield server
    finally:
        server.close()
