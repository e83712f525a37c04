"""Contract suite for alert sinks: the same behaviour from SlackNotifier (bot token, webhook) and ConsoleAlerts.

Each harness builds sinks over one store (a new sink = a restart) and reports what a person would
see: the delivered alerts, each as its current text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from newsradar.errors import TransientError
from newsradar.store import Store
from notifiers import AlertSink, ConsoleAlerts, SlackNotifier
from tests.notifiers.stories import OUTLETS, make_story, settings, update
from tests.servers.slack import TOKEN, SlackStandIn

HOSTILE = "<!channel> <@U123> <https://evil.example|클릭> *굵게* 이차전지\r\n\u202e" + "가" * 5000


@dataclass
class Harness:
    name: str
    store: Store
    new_sink: Callable[[], AlertSink]
    delivered: Callable[[], list[str]]  # current text of every alert a person can see
    edits: bool  # does a later state replace what was shown?
    fail_next: Callable[[int], None] | None  # make the next call fail transiently (429)


def _slack_texts(server: SlackStandIn, channel: str) -> list[str]:
    out = []
    for message in server.messages(channel):
        texts = [message.text] + [b["text"]["text"] for b in message.blocks if "text" in b]
        texts += [e["text"] for b in message.blocks for e in b.get("elements", [])]
        out.append("\n".join(texts))
    return out


def _harness(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    store = Store(tmp_path / "state.db")
    if kind == "console":
        cfg = settings(tmp_path)
        alerts = tmp_path / "alerts"
        return Harness(
            "console", store, lambda: ConsoleAlerts(cfg, store),
            lambda: [p.read_text(encoding="utf-8") for p in sorted(alerts.glob("*.txt"))] if alerts.exists() else [],
            edits=True, fail_next=None
        )
    server: SlackStandIn = request.getfixturevalue("slack_server")
    cfg = settings(tmp_path, slack={"base_url": server.base_url, "min_interval": 0, "timeout": 2})
    if kind == "slack-bot":
        return Harness(
            "slack-bot", store, lambda: SlackNotifier(cfg, store, token=TOKEN),
            lambda: _slack_texts(server, "#news-radar"), edits=True,
            fail_next=lambda n: server.fail_next(n, "429")
        )
    return Harness(
        "slack-webhook", store, lambda: SlackNotifier(cfg, store, webhook_url=server.webhook_url),
        lambda: _slack_texts(server, "#webhook-channel"), edits=False,
        fail_next=lambda n: server.fail_next(n, "429")
    )


@pytest.fixture(params=["slack-bot", "slack-webhook", "console"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    return _harness(request.param, request, tmp_path)


@pytest.fixture(params=["slack-bot", "slack-webhook"])
def remote_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    """The sinks with a remote end that can fail transiently (the console cannot)."""
    return _harness(request.param, request, tmp_path)


def deliver(sink: AlertSink, *stories: object) -> None:
    for story in stories:
        sink.add(update(story))  # type: ignore[arg-type]
    sink.flush()


def test_new_story_is_delivered_once_and_recorded(harness: Harness) -> None:
    sink = harness.new_sink()
    story = make_story()
    deliver(sink, story)
    [alert] = harness.delivered()
    assert "포항시, 이차전지 특화단지 조성 본격화" in alert and "2026-06-14 17:17 KST" in alert
    for channel in sink.channels(story):
        assert harness.store.alert(story.id, channel)[0] == "sent"  # type: ignore[index]


def test_redelivery_and_restart_deliver_nothing_twice(harness: Harness) -> None:
    story = make_story()
    deliver(harness.new_sink(), story)
    sink = harness.new_sink()
    deliver(sink, story)
    deliver(sink, story)
    sink.flush()
    assert len(harness.delivered()) == 1


def test_more_outlets_update_the_one_alert_where_possible(harness: Harness) -> None:
    sink = harness.new_sink()
    deliver(sink, make_story())
    deliver(sink, make_story(outlets=OUTLETS[:2]), make_story(outlets=OUTLETS[:3]))
    [alert] = harness.delivered()
    if harness.edits:
        assert "3개 매체 보도" in alert and "뉴스1" in alert
    else:
        assert "1개 매체 보도" in alert  # webhooks cannot edit (documented)


def test_stories_are_independent(harness: Harness) -> None:
    deliver(harness.new_sink(), make_story("s-a"), make_story("s-b", title="특화단지 지정 발표"))
    assert len(harness.delivered()) == 2


def test_transient_failure_then_retry_delivers_exactly_once(remote_harness: Harness) -> None:
    harness = remote_harness
    assert harness.fail_next is not None
    sink = harness.new_sink()
    harness.fail_next(1)
    with pytest.raises(TransientError):
        deliver(sink, make_story())
    sink.flush()
    sink.flush()
    assert len(harness.delivered()) == 1


def test_hostile_title_is_inert(harness: Harness) -> None:
    deliver(harness.new_sink(), make_story(title=HOSTILE))
    [alert] = harness.delivered()
    assert "\u202e" not in alert
    headline_lines = [line for line in alert.splitlines() if "굵게" in line]
    assert headline_lines and all("\r" not in line for line in headline_lines)
    if harness.name != "console":  # Slack renders tokens; a text file does not
        assert all(t.startswith("<https://news.example.co.kr/") for t in re.findall(r"<[^>]*>", alert))


def test_close_drops_unflushed_updates(harness: Harness) -> None:
    sink = harness.new_sink()
    sink.add(update(make_story()))
    sink.close()
    assert harness.delivered() == []
