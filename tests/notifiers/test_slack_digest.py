"""The daily digest in Slack over the Slack stand-in (which enforces Slack's block limits): once per day per
channel, also after a restart and with two notifiers racing on one store (SQLite, or a real PostgreSQL as
notifiers on two hosts would share); numbered parts past 50 blocks; a crash mid-digest resumed without a
repeat; the chart uploaded when the token may; Block Kit written under var/digests without Slack."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from newsradar.errors import TransientError
from newsradar.store import StateStore
from notifiers import SlackNotifier, digest_mailer
from notifiers.slack_digest import SlackDigest
from tests.notifiers.conftest import race
from tests.notifiers.stories import KST, OUTLETS, make_story, settings
from tests.servers.slack import TOKEN, SlackStandIn

MORNING = datetime(2026, 6, 15, 8, 0, tzinfo=KST)
TERMS = ["이차전지", "특화단지", "CIBF", "포항"]


def config(tmp_path: Path, slack: SlackStandIn | None, channels: list[str], terms: list[str] = TERMS,
           **digest: Any) -> Any:  # fmt: skip
    slack_cfg = {"base_url": slack.base_url, "min_interval": 0, "timeout": 2} if slack else {}
    return settings(tmp_path, slack=slack_cfg, watchlist={"terms": [{"name": t} for t in terms]},
                    digest={"slack_channels": channels, "time": "07:00", **digest})  # fmt: skip


def digester(cfg: Any, store: StateStore, slack: SlackStandIn | None) -> SlackDigest:
    """A Slack digest as the daemon wires it (a new object: a new process, nothing in memory)."""
    poster = SlackNotifier(cfg, store, token=TOKEN) if slack else None
    return SlackDigest(cfg, store, digest_mailer(cfg, store), poster)


def night_news(store: StateStore, count: int = 6, terms: list[str] = TERMS) -> list[str]:
    """``count`` stories relevant during the night, spread over ``terms``; their titles."""
    titles = []
    for i in range(count):
        title = f"{terms[i % len(terms)]} 관련 야간 기사 {i}호"
        story = make_story(f"n{i}", title=title, url=f"https://news.example.co.kr/n/{i}",
                           outlets=OUTLETS[: 1 + i % 5], terms=(terms[i % len(terms)],),
                           published=MORNING - timedelta(hours=9, minutes=i))  # fmt: skip
        store.save_story(story, f"n{i}-a", MORNING - timedelta(hours=8))
        titles.append(title)
    return titles


def posted(slack: SlackStandIn, channel: str) -> list[Any]:
    """The digest messages in a channel (not the file shares of the chart)."""
    return [m for m in slack.messages(channel) if m.blocks]


def texts(slack: SlackStandIn, channel: str) -> list[str]:
    return [json.dumps(m.blocks, ensure_ascii=False) for m in posted(slack, channel)]


def test_once_per_day_per_channel_also_after_a_restart(tmp_path: Path, store: StateStore,
                                                       slack_server: SlackStandIn) -> None:  # fmt: skip
    cfg = config(tmp_path, slack_server, ["#news", "#exec"])
    titles = night_news(store)
    assert digester(cfg, store, slack_server).send_due(MORNING) == ["#news", "#exec"]
    for channel in ("#news", "#exec"):
        (body,) = texts(slack_server, channel)
        assert all(t in body for t in titles) and "뉴스 다이제스트 — 2026-06-15 (6건)" in body
    assert digester(cfg, store, slack_server).send_due(MORNING + timedelta(hours=2)) == []  # restarted: not again
    assert digester(cfg, store, slack_server).due(MORNING + timedelta(hours=15)) == []  # 23:00, same day
    store.save_story(make_story("next", title="다음 날 아침 기사", url="https://news.example.co.kr/next",
                                published=MORNING + timedelta(hours=20)), "next-a", MORNING + timedelta(hours=20))
    assert digester(cfg, store, slack_server).send_due(MORNING + timedelta(days=1)) == ["#news", "#exec"]
    second = texts(slack_server, "#news")[1]
    assert "다음 날 아침 기사" in second and titles[0] not in second  # only what is new since the last delivery
    assert len(slack_server.posts) == 4


def test_a_long_digest_is_split_into_numbered_parts_within_slacks_limits(
    tmp_path: Path, store: StateStore, slack_server: SlackStandIn
) -> None:
    terms = [f"키워드{i:02d}" for i in range(100)]  # 100 terms: 100 sections, 47 fit a message
    cfg = config(tmp_path, slack_server, ["#news"], terms=terms)
    titles = night_news(store, count=130, terms=terms)
    assert digester(cfg, store, slack_server).send_due(MORNING) == ["#news"]
    messages = posted(slack_server, "#news")
    assert len(messages) == 3 and len(slack_server.posts) == 3  # the stand-in refuses > 50 blocks or 3,000 chars
    for number, message in enumerate(messages, 1):
        assert len(message.blocks) <= 50
        assert message.blocks[0]["type"] == "header" and f"({number}/3)" in message.blocks[0]["text"]["text"]
        assert all(len(b["text"]["text"]) <= 3000 for b in message.blocks if b["type"] == "section")
    listed = "".join(texts(slack_server, "#news"))
    assert all(listed.count(f"{t}>") == 1 for t in titles)  # every story once (linked headline), none lost
    firsts = [m.blocks[1]["text"]["text"].split("*")[1] for m in messages]
    assert firsts == ["키워드00", "키워드47", "키워드94"]  # terms in watchlist order across the parts


def test_one_term_with_many_stories_is_split_into_sections_marked_continued(
    tmp_path: Path, store: StateStore, slack_server: SlackStandIn
) -> None:
    cfg = config(tmp_path, slack_server, ["#news"])
    titles = night_news(store, count=80, terms=["포항"])
    digester(cfg, store, slack_server).send_due(MORNING)
    (message,) = posted(slack_server, "#news")
    sections = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    assert len(sections) > 1 and all(len(s) <= 3000 for s in sections)
    assert sections[0].startswith("*포항* (80건)") and all("(계속)" in s for s in sections[1:])
    assert sum(s.count("야간 기사") for s in sections) == len(titles)


def test_a_crash_between_parts_resumes_without_repeating_a_part(
    tmp_path: Path, store: StateStore, slack_server: SlackStandIn
) -> None:
    terms = [f"키워드{i:02d}" for i in range(60)]
    cfg = config(tmp_path, slack_server, ["#news"], terms=terms, chart_days=7)
    night_news(store, count=60, terms=terms)
    first = digester(cfg, store, slack_server)
    slack_server.delay_next(1, 3.0)  # part 1 posted, but answered after our 2 s timeout: a crash, as seen
    with pytest.raises(TransientError):
        first.send_due(MORNING)
    assert len(slack_server.posts) == 1 and store.digest_state("2026-06-15", "slack:#news") == "pending"
    assert digester(cfg, store, slack_server).send_due(MORNING + timedelta(minutes=1)) == ["#news"]
    headers = [m.blocks[0]["text"]["text"] for m in posted(slack_server, "#news")]
    assert len(headers) == 2 and "(1/2)" in headers[0] and "(2/2)" in headers[1]  # part 1 found in the history
    assert store.digest_state("2026-06-15", "slack:#news") == "sent"


def test_two_notifiers_racing_post_each_channels_digest_once(
    tmp_path: Path, two_stores: tuple[StateStore, StateStore], slack_server: SlackStandIn
) -> None:
    cfg = config(tmp_path, slack_server, ["#news", "#exec", "#board"])
    night_news(two_stores[0])
    first, second = (digester(cfg, s, slack_server) for s in two_stores)
    sent = race(lambda: first.send_due(MORNING), lambda: second.send_due(MORNING))
    assert sorted(sent[0] + sent[1]) == ["#board", "#exec", "#news"]
    assert all(len(posted(slack_server, c)) == 1 for c in ("#news", "#exec", "#board"))
    assert len(slack_server.uploads) == 3  # one chart each
    assert len(slack_server.posts) == 3


def test_the_chart_is_uploaded_when_the_token_may_and_words_stand_alone_otherwise(
    tmp_path: Path, store: StateStore, slack_server: SlackStandIn
) -> None:
    cfg = config(tmp_path, slack_server, ["#news", "#exec"])
    night_news(store)
    slack_server.refuse("files.getUploadURLExternal")  # the token lacks files:write ...
    digester(cfg, store, slack_server).send("#exec", MORNING)
    assert slack_server.uploads == [] and store.digest_part("2026-06-15", "slack:#exec", "chart")[0] == "skipped"
    assert "최근 14일 추이" in texts(slack_server, "#exec")[0]  # the trend in words
    slack_server.refused.clear()  # ... and now it has it
    digester(cfg, store, slack_server).send("#news", MORNING)
    (upload,) = slack_server.uploads
    assert upload.data is not None and upload.data.startswith(b"\x89PNG") and upload.alt_txt
    assert upload.channel == slack_server.channel_id("#news") and "키워드 추이" in (upload.title or "")


def test_without_slack_the_digest_is_printed_and_kept_as_block_kit(
    tmp_path: Path, store: StateStore, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(tmp_path, None, ["#news"])
    titles = night_news(store)
    assert digester(cfg, store, None).send_due(MORNING) == ["#news"]
    assert digester(cfg, store, None).send_due(MORNING + timedelta(hours=1)) == []
    out = capsys.readouterr().out
    assert "[Slack 다이제스트 → #news]" in out and all(t in out for t in titles)
    path = tmp_path / "digests" / "2026-06-15--slack-news.json"
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["channel"] == "#news" and saved["messages"][0]["blocks"][0]["type"] == "header"
    assert path.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    assert re.search(r"기간: .+ ~ .+", out)
