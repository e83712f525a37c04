"""robots.txt rules per host, fetched through our own client and cached with a TTL.

Follows RFC 9309 where it matters to a polite poller: a robots.txt that is missing (any 4xx) allows
everything; one that cannot be fetched right now (5xx, timeout) is a transient failure, so the page is tried
again later rather than fetched against the site owner's possible wishes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from newsradar.errors import PermanentError, TransientError

logger = logging.getLogger(__name__)

# Fetches a robots.txt URL; returns (status, body) or raises TransientError/PermanentError.
RobotsFetch = Callable[[str], tuple[int, bytes]]


class RobotsCache:
    """Parsed robots.txt per scheme+host; thread-safe; entries expire after ``ttl`` seconds."""

    def __init__(self, user_agent: str, fetch: RobotsFetch, ttl: float = 3600.0) -> None:
        self._agent = user_agent
        self._fetch = fetch
        self._ttl = ttl
        self._lock = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = {}
        self._cache: dict[str, tuple[float, RobotFileParser]] = {}

    def _parser(self, url: str, source: str) -> RobotFileParser:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        with self._lock:
            host_lock = self._host_locks.setdefault(origin, threading.Lock())
        with host_lock:  # one fetch per host even when several threads ask at once
            cached = self._cache.get(origin)
            if cached and time.monotonic() - cached[0] < self._ttl:
                return cached[1]
            parser = self._load(origin + "/robots.txt", source)
            self._cache[origin] = (time.monotonic(), parser)
            return parser

    def _load(self, robots_url: str, source: str) -> RobotFileParser:
        parser = RobotFileParser(robots_url)
        try:
            status, body = self._fetch(robots_url)
        except TransientError as exc:
            raise TransientError(
                f"{source}: robots.txt {robots_url} unavailable ({exc}); not fetching pages until it answers",
                retry_after=exc.retry_after,
            ) from exc
        except PermanentError as exc:
            logger.info(
                "%s: robots.txt %s not usable (%s); treating the site as allowing us", source, robots_url, exc
            )
            status, body = 404, b""
        if 400 <= status < 500 or not body:
            parser.parse([])  # missing robots.txt: everything is allowed
        else:
            parser.parse(body.decode("utf-8", errors="replace").splitlines())
        return parser

    def check(self, url: str, source: str) -> float | None:
        """Raise PermanentError when robots.txt disallows ``url`` for us; return its Crawl-delay, if any."""
        parser = self._parser(url, source)
        if not parser.can_fetch(self._agent, url):
            raise PermanentError(
                f"{source}: robots.txt of {urlsplit(url).netloc} disallows {url}; not fetched"
            )
        delay = parser.crawl_delay(self._agent)
        return float(delay) if delay is not None else None
