"""Slack misbehaving under the whole pipeline: 429 with Retry-After, 500, ratelimited, a timeout after Slack had
already posted, and the permanent errors (invalid_auth, channel_not_found).

Transient failures are retried by the runner until they pass: every alert arrives exactly once. Permanent ones
are not retried forever: the deliveries go to the dead-letter topic with the reason, the error is logged at
ERROR and the notifier shows unhealthy. Once the cause is fixed, replaying the dead letters delivers every alert
exactly once (what has been delivered is never posted again).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from newsradar.settings import Settings
from tests.reliability.harness import (
    dead_letters,
    healthy_source,
    logged,
    pipeline_settings,
    redrive,
    run_once,
    tally,
)
from tests.reliability.log_guard import WRONG_TOKEN
from tests.reliability.news import HEALTHY, RELEVANT, XML, rss
from tests.reliability.scorecard import Card
from tests.servers.http import HttpServer
from tests.servers.slack import TOKEN, SlackStandIn

STORIES = [RELEVANT[0], RELEVANT[1], RELEVANT[2]]
KEYS = [HEALTHY.key, *(e.key for e in STORIES)]


def _settings(tmp_path: Path, http_server: HttpServer, slack: SlackStandIn) -> Settings:
    http_server.add("/news.xml", rss(STORIES).encode(), headers=XML)
    sources = [{"name": "regional", "url": http_server.url("/news.xml")}, healthy_source(http_server)]
    return pipeline_settings(tmp_path, slack, sources)


TRANSIENT = {
    "429": ("answers 429 with Retry-After: 0.2 twice", lambda s: s.fail_next(2, "429", retry_after=0.2),
            "retry in 0.2s"),  # the runner's planned wait is Slack's Retry-After, not its own backoff
    "500": ("answers HTTP 500 twice", lambda s: s.fail_next(2, "500"), "Slack unavailable"),
    "ratelimited": ("answers ok=false, error=ratelimited twice", lambda s: s.fail_next(2, "ratelimited"),
                    "rate limited (ratelimited)"),
    "timeout": ("posts, but answers after the client's 1 s timeout", lambda s: s.delay_next(1, 2.5),
                "network error"),
}


@pytest.mark.parametrize("kind", list(TRANSIENT))
def test_transient_slack_failures_are_retried_and_every_alert_arrives_once(
    kind: str, tmp_path: Path, http_server: HttpServer, slack_server: SlackStandIn, slack_env: None,
    caplog: pytest.LogCaptureFixture, scorecard: Card,
) -> None:
    what, inject, problem = TRANSIENT[kind]
    settings = _settings(tmp_path, http_server, slack_server)
    inject(slack_server)

    run = run_once(settings)

    result = tally(slack_server, KEYS)
    notifier = run.component("notifier")
    warned = logged(caplog, "transient", problem)
    letters = dead_letters(settings)
    scorecard.record(
        f"Slack {kind}", "retried with backoff (Retry-After honoured); every alert exactly once",
        f"Slack {what}: {result.describe()}, retries logged: {len(warned)}, dead letters: {len(letters)}, "
        f"notifier healthy: {notifier.get('healthy')}",
        lost=result.lost, doubled=result.doubled,
    )
    assert result.counts == {k: 1 for k in KEYS} and result.noise == 0, result
    assert warned and notifier["counts"].get("errors", 0) >= 1
    assert not letters and notifier["healthy"] and not notifier["permanent_error"]
    assert len(slack_server.messages("#news")) == len(KEYS)


def test_invalid_auth_is_dead_lettered_loudly_and_replayed_once_the_token_is_fixed(
    tmp_path: Path, http_server: HttpServer, slack_server: SlackStandIn, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, scorecard: Card,
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", WRONG_TOKEN)
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    settings = _settings(tmp_path, http_server, slack_server)

    run = run_once(settings)

    notifier = run.component("notifier")
    errors = logged(caplog, "invalid_auth", "$SLACK_BOT_TOKEN", level=logging.ERROR)
    letters = dead_letters(settings)
    attempts = sum(1 for c in slack_server.calls if c.outcome == "invalid_auth")
    # The operator fixes the token and replays the dead letters.
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    replayed = redrive(settings)
    run_once(settings)
    result = tally(slack_server, KEYS)
    scorecard.record(
        "Slack invalid_auth", "not retried forever: dead-lettered with the reason, ERROR, unhealthy; "
        "after the fix and a replay, every alert once",
        f"{attempts} rejected call(s), {len(letters)} dead letter(s), ERROR logged: {bool(errors)}, "
        f"health: {notifier.get('healthy')} ({notifier.get('permanent_error') or 'no permanent error shown'}); "
        f"after fix + replay of {replayed}: {result.describe()}",
        lost=result.lost, doubled=result.doubled,
    )
    assert attempts <= len(KEYS), f"{attempts} calls with a rejected token: retried instead of dead-lettered"
    assert letters and all("invalid_auth" in letter.reason for letter in letters), letters
    assert errors, logged(caplog, "invalid_auth")
    assert not notifier["healthy"] and "invalid_auth" in (notifier["permanent_error"] or ""), notifier
    assert result.counts == {k: 1 for k in KEYS} and result.noise == 0, result


def test_channel_not_found_fails_one_delivery_loudly_and_replay_delivers_it_once(
    tmp_path: Path, http_server: HttpServer, slack_server: SlackStandIn, slack_env: None,
    caplog: pytest.LogCaptureFixture, scorecard: Card,
) -> None:
    settings = _settings(tmp_path, http_server, slack_server)
    slack_server.fail_next(1, "channel_not_found")

    run = run_once(settings)

    before = tally(slack_server, KEYS)
    notifier = run.component("notifier")
    errors = logged(caplog, "channel_not_found", level=logging.ERROR)
    letters = dead_letters(settings)
    replayed = redrive(settings)
    run_once(settings)
    result = tally(slack_server, KEYS)
    scorecard.record(
        "Slack channel_not_found", "that delivery dead-lettered with the reason, ERROR, unhealthy; the others "
        "delivered; after a replay, every alert once",
        f"before replay {before.describe()}, {len(letters)} dead letter(s), ERROR logged: {bool(errors)}, "
        f"health: {notifier.get('healthy')}; after replay of {replayed}: {result.describe()}",
        lost=result.lost, doubled=result.doubled,
    )
    assert sum(before.counts.values()) == len(KEYS) - 1  # one delivery failed, the others went out
    assert letters and any("channel_not_found" in letter.reason for letter in letters), letters
    assert errors
    assert not notifier["healthy"] and "channel_not_found" in (notifier["permanent_error"] or ""), notifier
    assert result.counts == {k: 1 for k in KEYS} and result.noise == 0, result
