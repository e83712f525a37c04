"""Run the real pipeline against the local servers and count what reached people.

``pipeline_settings`` builds validated settings with tight timeouts (a hostile source costs seconds, not
minutes); ``run_once`` runs one in-process sweep of the daemon; ``tally`` counts, per expected story, the
Slack posts that carry it, giving the items lost and the alerts doubled the scorecard reports.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from newsradar import settings as config
from newsradar.bus import open_bus
from newsradar.bus.base import DEAD_LETTER
from newsradar.daemon import Daemon
from newsradar.events import DeadLetter
from newsradar.pipeline import PollSummary
from newsradar.runner import dead_letters as read_dead_letters
from tests.reliability.news import HEALTHY, XML, rss
from tests.servers.http import HttpServer
from tests.servers.slack import SlackStandIn

CHANNEL = "#news"
FAST_HTTP = {
    "connect_timeout": 1.0, "read_timeout": 1.0, "total_timeout": 2.0, "max_bytes": 1_000_000,
    "per_host_delay": 0.0, "max_redirects": 3, "max_retry_after": 5.0,
}


def pipeline_settings(
    tmp_path: Path, standin: SlackStandIn | None, sources: list[dict[str, Any]], **sections: Any
) -> config.Settings:
    """Settings for one in-process pipeline; ``sections`` override whole YAML sections (merged one level deep)."""
    data: dict[str, Any] = {
        "state_dir": str(tmp_path / "state"),
        "web": {"listen": "127.0.0.1:0"},  # any free port: tests may run beside a real daemon
        "http": dict(FAST_HTTP),
        # alert_first_poll: these cases are about hostile input, and each is a source's first poll; a new source's
        # undated backlog (issue 18) is tested in tests/e2e/test_old_news.py
        "sources": [{"interval": 60, "jitter": 0, "alert_first_poll": True, **s} for s in sources],
        "slack": {"default_channel": CHANNEL, "min_interval": 0, "timeout": 1.0,
                  **({"base_url": standin.base_url} if standin else {})},
        "bus": {"max_attempts": 2},
    }
    for name, value in sections.items():
        data[name] = {**data[name], **value} if isinstance(value, dict) and name in data else value
    return config.parse(data, "reliability-test")


def healthy_source(http_server: HttpServer, name: str = "healthy") -> dict[str, Any]:
    """A well-behaved feed carrying one relevant story (HEALTHY), served at /healthy.xml."""
    http_server.add("/healthy.xml", rss([HEALTHY], "경북신문").encode("utf-8"), headers=XML)
    return {"name": name, "url": http_server.url("/healthy.xml")}


@dataclass
class Run:
    daemon: Daemon
    summaries: list[PollSummary]

    def counts(self, component: str) -> dict[str, int]:
        return self.daemon.metrics.snapshot()["components"].get(component, {}).get("counts", {})

    def component(self, name: str) -> dict[str, Any]:
        return self.daemon.metrics.snapshot()["components"].get(name, {})

    def summary(self, source: str) -> PollSummary:
        return next(s for s in self.summaries if s.source == source)


def run_once(settings: config.Settings) -> Run:
    """One sweep: poll every source, drain every stage, close (as ``newsradar run --once`` does)."""
    daemon = Daemon(settings)
    return Run(daemon, daemon.run_once())


def posts_with(slack: SlackStandIn, key: str) -> int:
    """Successful posts (bot or webhook) whose text carries ``key``."""
    return sum(1 for call in slack.posts if key in str(call.params.get("text", "")))


@dataclass
class Tally:
    """Per expected story, how many posts carried it; plus posts that carried none of them (noise)."""

    counts: dict[str, int]
    noise: int

    @property
    def lost(self) -> int:
        return sum(1 for n in self.counts.values() if n == 0)

    @property
    def doubled(self) -> int:
        return sum(n - 1 for n in self.counts.values() if n > 1)

    def describe(self) -> str:
        delivered = sum(1 for n in self.counts.values() if n)
        return f"{delivered}/{len(self.counts)} stories alerted, noise {self.noise}"


def tally(slack: SlackStandIn, keys: Iterable[str]) -> Tally:
    keys = list(keys)
    counts = {k: posts_with(slack, k) for k in keys}
    noise = sum(1 for c in slack.posts if not any(k in str(c.params.get("text", "")) for k in keys))
    return Tally(counts, noise)


def logged(caplog: pytest.LogCaptureFixture, *needles: str, level: int = logging.WARNING) -> list[str]:
    """Messages at ``level`` or above that contain every needle (a source name, a problem)."""
    return [
        r.getMessage() for r in caplog.records
        if r.levelno >= level and all(n in r.getMessage() for n in needles)
    ]


@contextmanager
def daemon_running(settings: config.Settings) -> Iterator[Daemon]:
    """The daemon as it runs in production (scheduler, stage threads, digest retries), in a thread, until exit."""
    daemon = Daemon(settings)
    failures: list[BaseException] = []

    def target() -> None:
        try:
            daemon.run_forever(install_signals=False)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            failures.append(exc)

    thread = threading.Thread(target=target, name="daemon-under-test", daemon=True)
    thread.start()
    try:
        yield daemon
    finally:
        daemon.request_stop()
        thread.join(timeout=60)
    assert not thread.is_alive(), "the daemon did not stop within 60 s of request_stop()"
    if failures:
        raise failures[0]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def dead_letters(settings: config.Settings) -> list[DeadLetter]:
    """Everything in the dead-letter topic (read by a throwaway group, nothing consumed for real)."""
    return [d.event for d in _drain(settings, f"inspect-{time.monotonic_ns()}", commit=False)]


def redrive(settings: config.Settings) -> int:
    """Replay every dead letter to its topic, as `newsradar dead-letter replay` does once the cause is fixed."""
    bus = open_bus(settings)
    try:
        return len(read_dead_letters(bus, replay=True))
    finally:
        bus.close()


def _drain(settings: config.Settings, group: str, *, commit: bool) -> list[Any]:
    bus = open_bus(settings)
    consumer = bus.consumer(DEAD_LETTER, group)
    found: list[Any] = []
    try:
        while deliveries := consumer.poll(100, 0.3):
            found += deliveries
            if commit:
                consumer.commit(deliveries)
    finally:
        consumer.close()
        bus.close()
    return found
