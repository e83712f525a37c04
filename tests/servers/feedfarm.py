"""Many feeds on many loopback addresses, answered by one asyncio child process (polling at scale).

``FeedFarm(feeds=1000, addresses=50)`` starts a process listening on 127.0.0.1 … 127.0.0.50 (Linux routes all
of 127.0.0.0/8 to the loopback interface, so no set-up is needed), one port per address, and serves
``/feed/N.xml``: an RSS 2.0 feed of ``items`` entries with an ETag. Feed N lives on address N mod
``addresses``. A request whose If-None-Match holds the feed's current ETag gets ``304 Not Modified``;
``bump(fraction)`` gives that share of the feeds (every k-th) two new entries and a new ETag, so the next
sweep sees that share answer 200 and the rest 304. ``counts()`` returns the statuses served so far.

The server is its own process so that its CPU is not charged to the poller under test (both share the
machine's cores, as a real feed host would not). Each connection serves one request and closes, as our
fetcher and urllib both ask.
"""

from __future__ import annotations

import asyncio
import json
import random
import select
import socket
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

_SYLLABLES = [chr(c) for c in range(0xAC00, 0xD7A4, 7)]
_EPOCH = datetime(2026, 11, 18, 6, 0, tzinfo=timezone.utc)


def _words(rng: random.Random, n: int) -> str:
    return " ".join("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(n))


def feed_xml(feed: int, generation: int, items: int) -> bytes:
    """The RSS document of ``feed`` at ``generation``: entries numbered from the newest, two more per generation."""
    newest = 2 * generation + items
    entries = []
    for k in range(newest, newest - items, -1):
        rng = random.Random(feed * 1_000_003 + k)
        when = format_datetime(_EPOCH + timedelta(minutes=7 * k + feed % 60))
        entries.append(
            f"<item><title>{_words(rng, 8)}</title>"
            f"<link>http://feeds.example/{feed}/article/{k}</link>"
            f"<guid isPermaLink=\"false\">feed{feed}-item{k}</guid>"
            f"<pubDate>{when}</pubDate>"
            f"<description>{_words(rng, 40)}</description></item>"
        )
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>피드 {feed}</title><link>http://feeds.example/{feed}/</link>"
        f"<description>feed {feed}</description>{''.join(entries)}</channel></rss>"
    )
    return xml.encode("utf-8")


class _Feeds:
    """Current generation, body and ETag of every feed (lives in the child process)."""

    def __init__(self, count: int, items: int) -> None:
        self.items = items
        self.generation = [0] * count
        self.bodies = [feed_xml(i, 0, items) for i in range(count)]
        self.statuses: Counter[int] = Counter()

    def etag(self, feed: int) -> bytes:
        return b'"f%d-g%d"' % (feed, self.generation[feed])

    def bump(self, fraction: float) -> int:
        step = max(1, round(1 / fraction)) if fraction > 0 else 0
        bumped = 0
        for feed in range(0, len(self.bodies), step) if step else ():
            self.generation[feed] += 1
            self.bodies[feed] = feed_xml(feed, self.generation[feed], self.items)
            bumped += 1
        return bumped


class _Http(asyncio.Protocol):
    """One request per connection: GET /feed/N.xml with or without If-None-Match."""

    def __init__(self, feeds: _Feeds) -> None:
        self.feeds = feeds
        self.buffer = b""
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            return
        head = self.buffer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        parts = head[0].split(b" ")
        path = parts[1] if len(parts) > 1 else b"/"
        inm = b""
        for line in head[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"if-none-match":
                inm = value.strip()
        self.transport.write(self._answer(path, inm))
        self.transport.close()

    def _answer(self, path: bytes, inm: bytes) -> bytes:
        feeds = self.feeds
        name = path.split(b"?", 1)[0]
        if not (name.startswith(b"/feed/") and name.endswith(b".xml") and name[6:-4].isdigit()):
            feeds.statuses[404] += 1
            return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        feed = int(name[6:-4])
        if feed >= len(feeds.bodies):
            feeds.statuses[404] += 1
            return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        etag = feeds.etag(feed)
        if inm and etag in [t.strip() for t in inm.split(b",")]:
            feeds.statuses[304] += 1
            return b"HTTP/1.1 304 Not Modified\r\nETag: %s\r\nConnection: close\r\n\r\n" % etag
        feeds.statuses[200] += 1
        body = feeds.bodies[feed]
        return (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml; charset=utf-8\r\nETag: %s\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (etag, len(body), body)
        )


def _serve(count: int, addresses: list[str], items: int) -> None:
    """The child: serve, print the endpoints as one JSON line, then answer commands read from stdin."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        feeds = _Feeds(count, items)
        servers = []
        for address in addresses:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, 0))
            sock.listen(1024)
            servers.append(await loop.create_server(lambda: _Http(feeds), sock=sock))
        _reply([(a, s.sockets[0].getsockname()[1]) for a, s in zip(addresses, servers, strict=True)])
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            command, _, arg = line.strip().partition(" ")
            if command in ("stop", ""):  # "" is end of input: the parent has gone
                break
            if command == "bump":
                _reply(feeds.bump(float(arg)))
            elif command == "counts":
                _reply({str(k): v for k, v in feeds.statuses.items()})
                feeds.statuses.clear()
        for server in servers:
            server.close()

    asyncio.run(main())


def _reply(value: Any) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


class FeedFarm:
    """``feeds`` RSS feeds spread over ``addresses`` loopback addresses, served by a child process."""

    def __init__(self, feeds: int = 1000, addresses: int = 50, items: int = 20) -> None:
        if not 1 <= addresses <= 250:
            raise ValueError("addresses must be 1..250 (127.0.0.1 … 127.0.0.250)")
        self.feeds = feeds
        # A plain child process running this file (stdlib only): no fork of a threaded parent, no re-import
        # of the caller's __main__ as multiprocessing's spawn would do.
        self._process = subprocess.Popen(
            [sys.executable, __file__, str(feeds), str(addresses), str(items)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        line = self._read(30)
        self.endpoints: list[tuple[str, int]] = [(host, int(port)) for host, port in json.loads(line)]

    def _read(self, timeout: float) -> str:
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], timeout)
        line = self._process.stdout.readline() if ready else ""
        if not line:
            self.close()
            raise RuntimeError(f"feed farm did not answer within {timeout:.0f} s")
        return line

    def _ask(self, command: str) -> Any:
        assert self._process.stdin is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        return json.loads(self._read(30))

    def url(self, feed: int) -> str:
        """URL of feed number ``feed`` (on address ``feed`` mod the number of addresses)."""
        host, port = self.endpoints[feed % len(self.endpoints)]
        return f"http://{host}:{port}/feed/{feed}.xml"

    def urls(self) -> list[str]:
        return [self.url(i) for i in range(self.feeds)]

    def bump(self, fraction: float) -> int:
        """Give ``fraction`` of the feeds (every k-th) two new entries and a new ETag; returns how many."""
        return int(self._ask(f"bump {fraction}"))

    def counts(self) -> dict[int, int]:
        """Responses by status since the last call (and reset)."""
        return {int(k): v for k, v in self._ask("counts").items()}

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                assert self._process.stdin is not None
                self._process.stdin.write("stop\n")
                self._process.stdin.flush()
                self._process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait(timeout=5)
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> FeedFarm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), [f"127.0.0.{i}" for i in range(1, int(sys.argv[2]) + 1)], int(sys.argv[3]))
