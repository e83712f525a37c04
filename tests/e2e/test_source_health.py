"""A local source that starts failing, then recovers: exactly one ops alert and one recovery message in Slack,
across restarts (one between two failures, one between queueing the alert and sending it), and both as lines
in the next digest. A Slack timeout after the post was accepted is reconciled, not posted twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from newsradar import settings as config
from newsradar.daemon import Daemon
from tests.e2e.feeds import DISTINCT, rss
from tests.servers.http import HttpServer
from tests.servers.slack import TOKEN, SlackStandIn

OPS = "#newsradar-ops"
RECIPIENT = "ops@example.com"


@pytest.fixture
def bot_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    for name in ("SLACK_WEBHOOK_URL", "NEWSRADAR_OPS_WEBHOOK_URL", "SMTP_USERNAME", "SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def _settings(tmp_path: Path, http_server: HttpServer, slack: SlackStandIn, **slack_extra: Any) -> config.Settings:
    return config.parse({
        "state_dir": str(tmp_path / "state"),
        "web": {"enabled": False},
        "http": {"per_host_delay": 0, "total_timeout": 5, "read_timeout": 2, "connect_timeout": 2},
        "sources": [{"name": "flaky-feed", "url": http_server.url("/flaky.xml"), "interval": 60, "jitter": 0}],
        "slack": {"base_url": slack.base_url, "default_channel": "#news", "min_interval": 0, **slack_extra},
        "source_health": {"failures": 3, "channel": OPS},
        "digest": {"time": "00:00", "recipients": [RECIPIENT]},
    }, "source-health-test")


def _ops(slack: SlackStandIn) -> list[str]:
    return [m.text for m in slack.messages(OPS)]


def test_failing_then_recovering_source_gives_one_alert_and_one_recovery_across_restarts(
    tmp_path: Path, http_server: HttpServer, slack_server: SlackStandIn, bot_token: None,
) -> None:
    settings = _settings(tmp_path, http_server, slack_server)
    http_server.add("/flaky.xml", rss(DISTINCT[:1]), headers={"Content-Type": "application/rss+xml"})

    daemon = Daemon(settings)
    assert daemon.collect.poll("flaky-feed").new_items == 1
    http_server.add("/flaky.xml", b"<html>502 Bad Gateway</html>", status=502)
    for _ in range(2):
        assert daemon.collect.poll("flaky-feed").error
    daemon.check_sources()
    daemon.close()
    assert _ops(slack_server) == []  # two failures: not yet an incident

    daemon = Daemon(settings)  # restart in the middle of the streak: the count is stored
    assert daemon.collect.poll("flaky-feed").error
    daemon.close()  # the alert is queued with the third failure; this process stops before sending it
    assert _ops(slack_server) == []

    daemon = Daemon(settings)
    daemon.check_sources()  # the queue is sent by the next process
    for _ in range(4):  # still failing: no message per poll
        assert daemon.collect.poll("flaky-feed").error
        daemon.check_sources()
    http_server.add("/flaky.xml", rss(DISTINCT[:2]), headers={"Content-Type": "application/rss+xml"})
    assert daemon.collect.poll("flaky-feed").new_items == 1
    daemon.check_sources()
    for _ in range(3):  # healthy again: nothing more
        assert daemon.collect.poll("flaky-feed").error is None
        daemon.check_sources()
    daemon.drain()
    daemon.send_digest()
    daemon.close()

    messages = _ops(slack_server)
    assert len(messages) == 2, messages
    assert "소스 장애: flaky-feed" in messages[0] and "3회 연속 수집 실패" in messages[0]
    assert "502" in messages[0]  # the last error, for the person on call
    assert "소스 복구: flaky-feed" in messages[1] and "장애" in messages[1]
    assert all("flaky" not in m.text for m in slack_server.messages("#news"))  # ops messages only go to ops
    digest = next((tmp_path / "state" / "digests").glob(f"*--{RECIPIENT}.txt")).read_text(encoding="utf-8")
    assert "■ 소스 상태" in digest
    assert digest.count("소스 장애: flaky-feed") == 1 and digest.count("소스 복구: flaky-feed") == 1


def test_an_ops_post_that_timed_out_after_slack_took_it_is_found_in_history_not_posted_again(
    tmp_path: Path, http_server: HttpServer, slack_server: SlackStandIn, bot_token: None,
) -> None:
    settings = _settings(tmp_path, http_server, slack_server, timeout=1.0)
    http_server.add("/flaky.xml", b"gone", status=500)
    daemon = Daemon(settings)
    try:
        for _ in range(3):
            daemon.collect.poll("flaky-feed")
        slack_server.delay_next(1, 2.5)  # Slack posts it, but answers after our 1 s timeout
        daemon.check_sources()
        assert daemon.store.source_alerts_to_send()[0].state == "pending"
        daemon.check_sources()  # reconciles through conversations.history and the alert's metadata
        assert daemon.store.source_alerts_to_send() == []
    finally:
        daemon.close()
    assert len(_ops(slack_server)) == 1
    assert [c.method for c in slack_server.calls].count("chat.postMessage") == 1


def test_without_slack_source_alerts_are_printed_and_kept_once(
    tmp_path: Path, http_server: HttpServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_WEBHOOK_URL", "NEWSRADAR_OPS_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = config.parse({
        "state_dir": str(tmp_path / "state"), "web": {"enabled": False},
        "http": {"per_host_delay": 0, "total_timeout": 5},
        "sources": [{"name": "flaky-feed", "url": http_server.url("/flaky.xml")}],
        "source_health": {"failures": 2},
    })
    http_server.add("/flaky.xml", b"gone", status=404)
    daemon = Daemon(settings)
    try:
        for _ in range(4):
            daemon.collect.poll("flaky-feed")
            daemon.check_sources()
    finally:
        daemon.close()
    files = list((tmp_path / "state" / "ops").glob("*.txt"))
    assert len(files) == 1 and "소스 장애: flaky-feed — 2회 연속 수집 실패" in files[0].read_text(encoding="utf-8")
    assert capsys.readouterr().out.count("소스 장애: flaky-feed") == 1
