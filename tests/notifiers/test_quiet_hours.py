"""Quiet hours over the Slack stand-in: held in the outbox (never dropped), released at the window's end once,
one by one or as ONE roll-up with the copies that arrived meanwhile counted; a crash mid-release doubles nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from newsradar.errors import ConfigError, TransientError
from newsradar.settings import QuietHoursSettings
from newsradar.store import StateStore, Store
from notifiers import ConsoleAlerts, SlackNotifier
from notifiers.claims import RELEASE_LEASE
from notifiers.quiet import quiet_until
from tests.notifiers.conftest import race
from tests.notifiers.stories import KST, OUTLETS, make_story, settings, update
from tests.servers.slack import TOKEN, SlackStandIn

NIGHT = datetime(2026, 6, 15, 23, 30, tzinfo=KST)  # a Monday night
MORNING = datetime(2026, 6, 16, 7, 0, 5, tzinfo=KST)
QUIET = {"window": "22:00-07:00", "timezone": "Asia/Seoul"}


class Clock:
    """The notifier's idea of now, moved by the test (the Slack stand-in and the store are real)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def notifier(tmp_path: Path, store: Store, slack: SlackStandIn, clock: Clock, **slack_cfg: Any) -> SlackNotifier:
    cfg = settings(tmp_path, slack={"base_url": slack.base_url, "default_channel": "#news", "min_interval": 0,
                                    "timeout": 2, "quiet_hours": QUIET, **slack_cfg})
    return SlackNotifier(cfg, store, token=TOKEN, clock=clock)


def deliver(sink: Any, store: Store, *stories: Any) -> None:
    for story in stories:
        store.save_story(story, f"{story.id}-{story.copies}", NIGHT)
        sink.add(update(story))
    sink.flush()


def test_window_arithmetic_days_and_chaining() -> None:
    friday_nights = QuietHoursSettings(window="22:00-07:00", days=["fri"])
    assert quiet_until(friday_nights, datetime(2026, 6, 12, 21, 59, tzinfo=KST)) is None
    assert quiet_until(friday_nights, datetime(2026, 6, 13, 3, 0, tzinfo=KST)) == datetime(2026, 6, 13, 7, 0,
                                                                                            tzinfo=KST)
    assert quiet_until(friday_nights, datetime(2026, 6, 14, 3, 0, tzinfo=KST)) is None  # Saturday night: not quiet
    weekend = QuietHoursSettings(window="00:00-24:00", days=["sat", "sun"])
    assert quiet_until(weekend, datetime(2026, 6, 13, 10, 0, tzinfo=KST)) == datetime(2026, 6, 15, 0, 0, tzinfo=KST)
    assert quiet_until(QuietHoursSettings(window="off"), NIGHT) is None


@pytest.mark.parametrize(("quiet", "message"), [
    ({"window": "22:00-22:00"}, "start and end are the same"),
    ({"window": "25:00-07:00"}, "hours run 00-23"),
    ({"window": "10pm-7am"}, "expected 'HH:MM-HH:MM'"),
    ({"window": "22:00-07:00", "days": ["mon", "funday"]}, "unknown day"),
    ({"window": "22:00-07:00", "timezone": "Seoul"}, "unknown IANA time zone"),
    ({"window": "22:00-07:00", "quiet": True}, "unknown key"),
])
def test_quiet_hours_are_validated_with_the_key_named(tmp_path: Path, quiet: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings(tmp_path, slack={"quiet_hours": quiet})
    assert "slack.quiet_hours" in str(err.value) and message in str(err.value)


def test_two_routes_to_one_channel_cannot_disagree(tmp_path: Path) -> None:
    routes = [{"terms": ["포항"], "channel": "#p", "quiet_hours": QUIET},
              {"terms": ["CIBF"], "channel": "#p", "quiet_hours": {"window": "23:00-06:00"}}]
    with pytest.raises(ConfigError, match="routes\\[1\\].quiet_hours: channel #p already has different"):
        settings(tmp_path, slack={"routes": routes})


def test_few_held_alerts_go_out_one_by_one_at_the_end_with_their_copies(
    tmp_path: Path, store: Store, slack_server: SlackStandIn
) -> None:
    clock = Clock(NIGHT)
    sink = notifier(tmp_path, store, slack_server, clock)
    deliver(sink, store, make_story("s1", outlets=OUTLETS[:1]), make_story("s2", title="포항 소식", outlets=OUTLETS[:1]))
    assert slack_server.posts == [] and store.alert("s1", "#news")[0] == "held"
    clock.now = NIGHT + timedelta(hours=2)
    deliver(sink, store, make_story("s1", outlets=OUTLETS[:3]))  # two more outlets during the night
    assert sink.release_due() == 0 and slack_server.posts == []  # still night
    clock.now = MORNING
    assert sink.release_due() == 2
    messages = slack_server.messages("#news")
    assert len(messages) == 2 and len(slack_server.posts) == 2
    s1 = next(m for m in messages if m.metadata and m.metadata["event_payload"]["story_id"] == "s1")
    assert "3개 매체" in str(s1.blocks)  # the copies that arrived meanwhile are counted
    assert sink.release_due() == 0 and len(slack_server.posts) == 2  # once
    deliver(sink, store, make_story("s1", outlets=OUTLETS[:4]))  # after release: edited as usual
    assert len(slack_server.posts) == 2 and "4개 매체" in str(slack_server.messages("#news")[0].blocks + s1.blocks)


def test_many_held_alerts_go_out_as_one_rollup_that_is_edited_later(
    tmp_path: Path, store: Store, slack_server: SlackStandIn
) -> None:
    clock = Clock(NIGHT)
    sink = notifier(tmp_path, store, slack_server, clock)
    stories = [make_story(f"s{i}", title=f"포항 야간 소식 {i}호", url=f"https://news.example.co.kr/{i}",
                          outlets=OUTLETS[:1]) for i in range(6)]
    deliver(sink, store, *stories)
    deliver(sink, store, make_story("s3", title="포항 야간 소식 3호", url="https://news.example.co.kr/3",
                                    outlets=OUTLETS[:4]))
    clock.now = MORNING
    assert sink.release_due() == 6
    assert len(slack_server.posts) == 1  # ONE roll-up, not six alerts
    rollup = slack_server.messages("#news")[0]
    body = str(rollup.blocks)
    assert "보류된 새 기사 6건" in body and all(f"야간 소식 {i}호" in body for i in range(6))
    assert body.index("야간 소식 3호") < body.index("야간 소식 0호") and "4개 매체" in body  # most-carried first
    assert all(store.alert(s.id, "#news")[0] == "sent" for s in stories)
    deliver(sink, store, make_story("s0", title="포항 야간 소식 0호", url="https://news.example.co.kr/0",
                                    outlets=OUTLETS[:5]))
    assert len(slack_server.posts) == 1 and len(slack_server.updates) == 1
    assert "5개 매체" in str(slack_server.messages("#news")[0].blocks)  # the roll-up, redrawn


def test_a_rollup_interrupted_after_slack_took_it_is_not_posted_twice(
    tmp_path: Path, store: Store, slack_server: SlackStandIn
) -> None:
    clock = Clock(NIGHT)
    sink = notifier(tmp_path, store, slack_server, clock, timeout=0.5)
    deliver(sink, store, *[make_story(f"s{i}", title=f"소식 {i}", url=f"https://n.example.kr/{i}") for i in range(5)])
    clock.now = MORNING
    slack_server.delay_next(1, 1.5)  # Slack posts it, but answers after our timeout
    with pytest.raises(TransientError):
        sink.release_due()
    assert len(slack_server.posts) == 1 and store.pending_rollups()
    restarted = notifier(tmp_path, store, slack_server, clock)  # a new process: nothing in memory
    assert restarted.release_due() == 0  # the claim is not a minute old: its holder may still be posting
    clock.now = MORNING + RELEASE_LEASE + timedelta(seconds=1)
    assert restarted.release_due() == 5
    assert len(slack_server.posts) == 1 and not store.pending_rollups()  # found in the history, adopted
    assert all(store.alert(f"s{i}", "#news")[0] == "sent" for i in range(5))


def test_two_notifiers_releasing_together_send_each_held_story_once(
    tmp_path: Path, two_stores: tuple[StateStore, StateStore], slack_server: SlackStandIn
) -> None:
    clock = Clock(NIGHT)
    routes = [{"terms": ["포항"], "channel": "#pohang"}]
    first, second = (notifier(tmp_path, s, slack_server, clock, routes=routes) for s in two_stores)
    deliver(first, two_stores[0], make_story("a", title="이차전지 야간 1"), make_story("b", title="이차전지 야간 2"),
            *[make_story(f"p{i}", title=f"포항 야간 {i}", terms=("포항",)) for i in range(5)])
    assert slack_server.posts == [] and len(two_stores[1].held_alerts()) == 7
    clock.now = MORNING
    released = race(first.release_due, second.release_due)  # two notifiers (hosts) on one state store
    assert sum(released) == 7 and not two_stores[0].held_alerts()
    assert len(slack_server.messages("#news")) == 2 and len(slack_server.messages("#pohang")) == 1  # each once
    assert len(slack_server.posts) == 3 and "보류된 새 기사 5건" in str(slack_server.messages("#pohang")[0].blocks)
    assert first.release_due() + second.release_due() == 0 and len(slack_server.posts) == 3


def test_a_channel_can_be_exempt_and_routes_have_their_own_window(
    tmp_path: Path, store: Store, slack_server: SlackStandIn
) -> None:
    clock = Clock(NIGHT)
    sink = notifier(tmp_path, store, slack_server, clock,
                    routes=[{"terms": ["포항"], "channel": "#pohang", "quiet_hours": {"window": "off"}},
                            {"terms": ["CIBF"], "channel": "#cibf", "quiet_hours": {"window": "23:45-06:00"}}])
    deliver(sink, store, make_story("p", terms=("포항",)), make_story("c", terms=("CIBF",)),
            make_story("b", terms=("이차전지",)))
    assert len(slack_server.messages("#pohang")) == 1  # exempt from the default window
    assert len(slack_server.messages("#cibf")) == 1  # 23:30: its own window starts at 23:45
    assert store.alert("b", "#news")[0] == "held" and len(slack_server.posts) == 2
    clock.now = NIGHT + timedelta(minutes=20)
    deliver(sink, store, make_story("c2", title="CIBF 폐막", terms=("CIBF",)))
    assert store.alert("c2", "#cibf")[0] == "held" and len(slack_server.posts) == 2


def test_console_fallback_holds_and_releases_too(tmp_path: Path, store: Store,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock(NIGHT)
    cfg = settings(tmp_path, slack={"quiet_hours": {**QUIET, "one_by_one_up_to": 1}})
    sink = ConsoleAlerts(cfg, store, clock=clock)
    deliver(sink, store, make_story("a", title="첫 기사"), make_story("b", title="둘째 기사"))
    assert "첫 기사" not in capsys.readouterr().out
    clock.now = MORNING
    assert sink.release_due() == 2
    out = capsys.readouterr().out
    assert "보류된 새 기사 2건" in out and "첫 기사" in out and "둘째 기사" in out
    assert sink.release_due() == 0 and len(list((tmp_path / "alerts").glob("rollup-*"))) == 1


def test_the_readme_example_is_a_valid_config_that_means_what_it_says(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quiet hours, the Slack digest and the trend chart", 1)[1]
    example = yaml.safe_load(section.split("```yaml", 1)[1].split("```", 1)[0])
    cfg = settings(tmp_path, **example)
    assert quiet_until(cfg.slack.quiet_hours_for("#news"), NIGHT) == MORNING.replace(second=0)
    assert cfg.slack.quiet_hours_for("#pohang") is None
    saturday = datetime(2026, 6, 13, 15, 0, tzinfo=KST)
    assert quiet_until(cfg.slack.quiet_hours_for("#battery"), saturday) == datetime(2026, 6, 15, 0, 0, tzinfo=KST)
    assert cfg.digest.slack_channels == ["#news", "#exec"] and cfg.digest.subscriptions[0].terms == ["이차전지"]
