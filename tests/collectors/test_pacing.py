"""Adaptive polling (collectors/pacing.py): intervals follow the publishing rate within bounds; a source that
keeps failing to parse is polled rarely until it works, and health says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from collectors.pacing import Pacer
from newsradar.daemon import Daemon
from newsradar.settings import parse
from newsradar.store import PollState, SqliteStore
from tests.servers.http import HttpServer

T0 = datetime(2026, 11, 18, 0, 0, tzinfo=UTC)


def _settings(tmp_path: Path, sources: list[dict], **polling: object):
    return parse({"state_dir": str(tmp_path), "http": {"per_host_delay": 0},
                  "polling": {"adaptive": True, "min_interval": 60, "max_interval": 3600, **polling},
                  "naver": {"daily_budget": 1000, "paging_share": 0.2}, "sources": sources})  # fmt: skip


def test_the_interval_follows_the_publishing_rate_within_the_bounds(tmp_path: Path):
    settings = _settings(tmp_path, [{"name": "busy", "url": "https://x/rss", "interval": 600},
                                    {"name": "quiet", "url": "https://y/rss", "interval": 600}])  # fmt: skip
    store = SqliteStore(tmp_path / "state.db")
    pacer = Pacer(settings, store)
    assert pacer.interval("busy") == 600  # nothing saved yet: the configured interval
    when, published = T0, 0
    for _ in range(30):  # the source publishes one item every 200 s; a poll finds those since the last one
        total = int((when - T0).total_seconds() // 200)
        state = pacer.after_poll("busy", total - published, False, when)
        published = total
        when += timedelta(seconds=state.interval)
    assert 150 <= state.interval <= 250 and state.rate is not None and 14 <= state.rate * 3600 <= 24
    when = T0
    intervals = []
    for _ in range(12):  # never anything new: drifts up to the maximum and stays there
        intervals.append(pacer.after_poll("quiet", 0, False, when).interval)
        when += timedelta(seconds=intervals[-1])
    assert intervals[-1] == 3600 and max(intervals) == 3600 and min(intervals) >= 60
    for _ in range(5):  # a burst: many items per poll never takes it under the minimum
        state = pacer.after_poll("quiet", 500, False, when)
        when += timedelta(seconds=state.interval)
    assert state.interval == 60
    assert Pacer(settings, store).interval("busy") == store.poll_state("busy").interval  # a restart resumes
    store.close()


def test_a_naver_source_never_goes_under_its_budget_paced_interval(tmp_path: Path):
    settings = _settings(tmp_path, [{"name": f"n{i}", "kind": "naver", "query": "포항"} for i in range(4)])
    store = SqliteStore(tmp_path / "state.db")
    pacer = Pacer(settings, store)
    when = T0
    for _ in range(5):
        state = pacer.after_poll("n0", 100, False, when)
        when += timedelta(seconds=state.interval)
    assert state.interval == 86400 * 4 / 800  # 432 s, not polling.min_interval's 60
    store.close()


def test_a_source_that_keeps_failing_to_parse_is_polled_rarely_until_it_works(tmp_path: Path, http_server: HttpServer):
    http_server.add("/feed.xml", b"<html><body>Service temporarily unavailable</body></html>",
                    headers={"Content-Type": "text/html"})  # fmt: skip
    settings = _settings(tmp_path, [{"name": "flaky", "url": http_server.url("/feed.xml"), "interval": 300}],
                         parse_failures=3, failing_interval=7200)  # fmt: skip
    daemon = Daemon(settings, role="collector")
    try:
        for _ in (1, 2):
            summary = daemon.poll_source("flaky")
            assert summary.parse_failed and daemon.store.poll_state("flaky").interval == 300
        daemon.poll_source("flaky")
        state = daemon.store.poll_state("flaky")
        assert state == PollState(7200, None, 3, state.last_poll_at)
        health = daemon.metrics.snapshot()["components"]["source:flaky"]
        assert health["info"] == {"interval": 7200, "parse_failures": 3, "backed_off": True, "items_per_hour": None}
        assert not health["healthy"] or health["last_success_at"] is None
        assert "not an RSS/Atom feed" in health["last_error"]
        # the feed works again: back to normal polling at once
        http_server.add("/feed.xml", b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
                        b"<title>a</title><link>https://x/a</link></item></channel></rss>",
                        headers={"Content-Type": "application/rss+xml"})  # fmt: skip
        summary = daemon.poll_source("flaky")
        assert summary.new_items == 1 and not summary.parse_failed
        state = daemon.store.poll_state("flaky")
        assert state.failures == 0 and 60 <= state.interval <= 3600
        assert daemon.metrics.snapshot()["components"]["source:flaky"]["info"]["backed_off"] is False
    finally:
        daemon.close()


def test_the_daemon_moves_a_sources_job_to_its_new_interval(tmp_path: Path, http_server: HttpServer):
    from apscheduler.schedulers.background import BackgroundScheduler

    http_server.add("/bad.xml", b"not a feed at all", headers={"Content-Type": "text/plain"})
    settings = _settings(tmp_path, [{"name": "bad", "url": http_server.url("/bad.xml"), "interval": 300}],
                         parse_failures=1, failing_interval=7200)  # fmt: skip
    daemon = Daemon(settings, role="collector")
    scheduler = daemon._scheduler = BackgroundScheduler()
    try:
        daemon._schedule(scheduler)
        scheduler.start(paused=True)  # jobs are in place, none runs by itself
        assert scheduler.get_job("poll:bad").trigger.interval.total_seconds() == 300
        daemon.poll_source("bad")
        assert scheduler.get_job("poll:bad").trigger.interval.total_seconds() == 7200
    finally:
        scheduler.shutdown(wait=False)
        daemon.close()
