"""The mail server misbehaving while the daemon runs: refusing connections, hanging mid-DATA, refusing DATA
with 451, and rejecting our login. Transient failures are retried by the daemon's digest job until the server
recovers; a rejected login is permanent (logged at ERROR, unhealthy) until the password is fixed. In every case
the day's digest, holding every story, is delivered exactly once, and the password never reaches a log line.
"""

from __future__ import annotations

import logging
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from newsradar.daemon import Daemon
from newsradar.settings import Settings
from tests.reliability.harness import daemon_running, logged, pipeline_settings, run_once, wait_for
from tests.reliability.log_guard import WRONG_PASSWORD
from tests.reliability.news import HEALTHY, RELEVANT, XML, rss
from tests.reliability.scorecard import Card
from tests.reliability.smtp_raw import RawSmtp, raw_smtp
from tests.servers.http import HttpServer
from tests.servers.smtp import PASSWORD, USERNAME, SmtpServer

RECIPIENT = "watcher@example.com"
STORIES = [HEALTHY, RELEVANT[0], RELEVANT[1]]


@pytest.fixture
def no_slack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Alerts go to the console (these tests are about the digest); no SMTP credentials unless a test sets them."""
    for name in ("SLACK_BOT_TOKEN", "SLACK_WEBHOOK_URL", "SMTP_USERNAME", "SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def _settings(tmp_path: Path, http_server: HttpServer, port: int, **smtp: Any) -> Settings:
    """Stories already in the state store (one sweep), and a digest due now, retried by the daemon on failure."""
    http_server.add("/news.xml", rss(STORIES).encode(), headers=XML)
    settings = pipeline_settings(
        tmp_path, None, [{"name": "regional", "url": http_server.url("/news.xml"), "interval": 3600}],
        smtp={"host": "127.0.0.1", "port": port, "security": "none", "timeout": 1.0, **smtp},
        digest={"time": "00:00", "misfire_grace": 86_400, "recipients": [RECIPIENT]},
    )
    run_once(settings)
    return settings


def _stories_in(messages: list[Message]) -> tuple[int, int]:
    """(lost, doubled) over the stories, counted in the plain-text part of every digest delivered."""
    texts = []
    for message in messages:
        part = message if not message.is_multipart() else next(
            p for p in message.walk() if p.get_content_type() == "text/plain")
        texts.append(part.get_payload(decode=True).decode("utf-8"))
    joined = "\n".join(texts)
    lost = sum(1 for s in STORIES if s.key not in joined)
    doubled = sum(joined.count(s.key) - 1 for s in STORIES if joined.count(s.key) > 1)
    return lost + (not messages), doubled + max(0, len(messages) - 1)


def _recovers(daemon: Daemon, server: RawSmtp | SmtpServer, fix: Any) -> None:
    """Wait for the daemon's first failed digest attempt, fix the server, wait for a delivered digest."""
    wait_for(lambda: daemon.metrics.snapshot()["components"].get("digest", {}).get("counts", {}).get("errors"),
             30, "the first failed digest attempt")
    fix()
    delivered = (lambda: server.accepted) if isinstance(server, RawSmtp) else (lambda: server.messages)
    wait_for(lambda: bool(delivered()), 30, "the digest after recovery")


@pytest.mark.parametrize("failure", ["refuses-connections", "hangs-mid-data"])
def test_digest_survives_a_raw_server_failure_and_is_delivered_once(
    failure: str, tmp_path: Path, http_server: HttpServer, no_slack: None, caplog: pytest.LogCaptureFixture,
    scorecard: Card,
) -> None:
    with raw_smtp() as server:
        if failure == "hangs-mid-data":
            server.listen()
            server.hang_next(1)
        settings = _settings(tmp_path, http_server, server.port)
        with daemon_running(settings) as daemon:
            _recovers(daemon, server, server.listen if failure == "refuses-connections" else (lambda: None))
        _again(settings)  # a restart later the same day sends nothing more
        messages = server.messages()
        transactions = server.transactions
    lost, doubled = _stories_in(messages)
    warned = logged(caplog, "digest failed (transient)")
    ids = {m["Message-ID"] for m in messages}
    scorecard.record(
        f"SMTP {failure}", "retried by the daemon until the server answers; the digest once, every story in it",
        f"{len(messages)} digest(s) accepted after {transactions} DATA transaction(s), retries logged: "
        f"{len(warned)}", lost=lost, doubled=doubled,
    )
    assert warned, logged(caplog, "digest")
    assert lost == 0 and doubled == 0 and len(ids) == 1


def test_digest_survives_451_refusals_and_is_delivered_once(
    tmp_path: Path, http_server: HttpServer, smtp_server: SmtpServer, no_slack: None,
    caplog: pytest.LogCaptureFixture, scorecard: Card,
) -> None:
    settings = _settings(tmp_path, http_server, smtp_server.port)
    smtp_server.refuse_next(2, 451)
    with daemon_running(settings) as daemon:
        wait_for(lambda: bool(smtp_server.messages), 30, "the digest after two 451 refusals")
        assert daemon.metrics.snapshot()["components"]["digest"]["counts"].get("errors", 0) >= 1
    _again(settings)
    lost, doubled = _stories_in([m.message for m in smtp_server.messages])
    scorecard.record(
        "SMTP 451 at DATA (twice)", "transient: retried; the digest once, every story in it",
        f"{len(smtp_server.messages)} digest(s) after {smtp_server.transactions} transaction(s)",
        lost=lost, doubled=doubled,
    )
    assert logged(caplog, "digest failed (transient)", "451")
    assert lost == 0 and doubled == 0


def test_rejected_login_is_permanent_and_loud_then_once_after_the_password_is_fixed(
    tmp_path: Path, http_server: HttpServer, smtp_server: SmtpServer, no_slack: None,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, scorecard: Card,
) -> None:
    smtp_server.require_auth()
    monkeypatch.setenv("SMTP_USERNAME", USERNAME)
    monkeypatch.setenv("SMTP_PASSWORD", WRONG_PASSWORD)
    settings = _settings(tmp_path, http_server, smtp_server.port)
    daemon = Daemon(settings)
    try:
        daemon.send_digest()
        digest = daemon.metrics.snapshot()["components"]["digest"]
    finally:
        daemon.close()
    errors = logged(caplog, "login refused", level=logging.ERROR)
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)  # the operator fixes the password and restarts
    _again(settings)
    _again(settings)
    lost, doubled = _stories_in([m.message for m in smtp_server.messages])
    scorecard.record(
        "SMTP login rejected", "permanent: ERROR and unhealthy, not retried; after the fix the digest once",
        f"{len(smtp_server.auth_attempts)} login attempt(s), ERROR logged: {bool(errors)}, digest healthy: "
        f"{digest['healthy']}; after the fix {len(smtp_server.messages)} digest(s)", lost=lost, doubled=doubled,
    )
    assert errors and not digest["healthy"] and "login refused" in (digest["permanent_error"] or "")
    outcomes = [ok for _, ok in smtp_server.auth_attempts]  # smtplib may try a second mechanism: one session
    assert outcomes[-1] and not any(outcomes[:-1]), outcomes
    assert smtp_server.messages[0].authenticated_as == USERNAME
    assert lost == 0 and doubled == 0


def _again(settings: Settings) -> None:
    """A restart of the digest job later the same day: it must send nothing more."""
    daemon = Daemon(settings)
    try:
        daemon.send_digest()
    finally:
        daemon.close()
