"""The state store's issue-17 contract on both stores (SQLite and a real PostgreSQL): story copies and the
dashboard's reads, source health saved by compare-and-set, source alerts claimed by exactly one sender, the
outbox counts, pruning, and the dashboard's handle that never writes."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from newsradar import settings as config
from newsradar.errors import StateError
from newsradar.events import Article, Story
from newsradar.store import SourceAlert, SourcePoll, SourceStatus, StateStore, StoryWrite, open_reader, open_store
from tests.contracts.test_store import Opener, opener  # noqa: F401 - the fixture, parametrised over both stores

T0 = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)
LEASE = timedelta(minutes=5)


def _article(aid: str, outlet: str, title: str, minutes: int | None) -> Article:
    published = T0 + timedelta(minutes=minutes) if minutes is not None else None
    return Article(id=aid, source="s", outlet=outlet, url=f"https://news.example/{aid}", title=title, text="",
                   published_at=published, fetched_at=T0 + timedelta(hours=1))


def _story(sid: str, lead: Article, terms: tuple[str, ...] = ("포항",), first_seen: datetime = T0) -> Story:
    return Story(id=sid, lead=lead, first_seen=first_seen, outlets=(lead.outlet,), copies=1, terms=terms)


def _status(source: str = "feed", status: str = "healthy", failures: int = 0) -> SourceStatus:
    return SourceStatus(source, status, failures, None, None, T0, T0, T0, T0, None)


def _alert(aid: str, kind: str = "failing", minutes: int = 0, source: str = "feed") -> SourceAlert:
    return SourceAlert(aid, source, kind, "HTTP 503", 3, T0, None, T0 + timedelta(minutes=minutes))


def test_story_copies_are_written_with_the_batch_and_follow_a_merge(opener: Opener) -> None:  # noqa: F811
    store = opener()
    a, b, c = _article("a", "경북일보", "포항 이차전지", 5), _article("b", "대경일보", "포항 이차전지", 1), \
        _article("c", "경북매일", "포항 특화단지", None)
    store.write_stories([StoryWrite(_story("s1", a), article_id="a", copy=a),
                         StoryWrite(_story("s1", a), article_id="b", copy=b),
                         StoryWrite(_story("s2", c), article_id="c", copy=c)], T0)
    store.write_stories([StoryWrite(_story("s1", a), article_id="b", copy=b)], T0)  # a redelivery: no second row
    store.claim_grouping("w")  # the grouper's batch transaction writes copies the same way
    assert store.commit_grouping("w", [], [StoryWrite(_story("s1", a), article_id="b", copy=b)], T0)
    copies = store.story_copies("s1")
    assert [(x.article_id, x.outlet, x.url) for x in copies] == [
        ("b", "대경일보", "https://news.example/b"), ("a", "경북일보", "https://news.example/a")]  # by publication
    assert copies[0].published_at == T0 + timedelta(minutes=1) and copies[0].fetched_at == T0 + timedelta(hours=1)
    store.write_stories([StoryWrite(_story("s1", a), absorbed_id="s2")], T0)
    assert [x.article_id for x in opener().story_copies("s1")] == ["b", "a", "c"]  # undated: by fetch time, last
    assert store.story_copies("s2") == [] and store.story_copies("nope") == []


def test_recent_stories_newest_first_with_term_day_and_headline_filters(opener: Opener) -> None:  # noqa: F811
    store = opener()
    writes = []
    for i, (title, terms) in enumerate([("포항 이차전지 특화단지", ("포항", "이차전지")), ("Battery 100% recycled_",
                                         ("이차전지",)), ("과메기 축제", ("포항",)), ("무관한 기사", ())]):
        lead = _article(f"a{i}", "o", title, i)
        writes.append(StoryWrite(_story(f"s{i}", lead, terms, T0 + timedelta(hours=i)), article_id=lead.id))
    store.write_stories(writes, T0)
    ids = lambda stories: [s.id for s in stories]  # noqa: E731
    assert ids(store.recent_stories()) == ["s2", "s1", "s0"]  # s3 matched nothing: not on the dashboard
    assert ids(store.recent_stories(term="이차전지")) == ["s1", "s0"]
    assert ids(store.recent_stories(term="없는 단어")) == []
    assert ids(store.recent_stories(start=T0 + timedelta(hours=1), end=T0 + timedelta(hours=2))) == ["s1"]
    assert ids(store.recent_stories(query="battery")) == ["s1"]  # Latin letters: any case
    assert ids(store.recent_stories(query="100%")) == ["s1"] and ids(store.recent_stories(query="d_")) == ["s1"]
    assert ids(store.recent_stories(query="_")) == ["s1"]  # % and _ are characters, not wildcards
    assert ids(store.recent_stories(query="특화")) == ["s0"]
    assert ids(store.recent_stories(limit=1, offset=1)) == ["s1"]
    store.record_alert("s0", "#news", "sent", "C1/1.2", 2)
    store.record_alert("s0", "#b", "pending", None, 1)
    assert store.story_alerts("s0") == [("#b", "pending", None, 1), ("#news", "sent", "C1/1.2", 2)]
    assert store.story_alerts("s1") == []


def test_source_status_is_compare_and_set_with_its_poll_and_alert(opener: Opener) -> None:  # noqa: F811
    store, other = opener(), opener()
    assert store.source_status("feed") is None
    assert store.save_source_status(_status(), 0, poll=SourcePoll(T0, 4, None))
    assert not other.save_source_status(_status(failures=9), 0, poll=SourcePoll(T0, 9, None))  # lost the race
    first = store.source_status("feed")
    assert first is not None and first.version == 1 and first.failures == 0
    failing = replace(_status(status="failing", failures=3), incident_since=T0)
    assert store.save_source_status(failing, 1, poll=SourcePoll(T0 + timedelta(minutes=1), 0, "HTTP 503"),
                                    alert=_alert("feed|failing|1"))
    # a writer still holding version 1 writes nothing: no status, no poll, no alert
    assert not other.save_source_status(_status(), 1, poll=SourcePoll(T0, 50, None), alert=_alert("x|failing|1"))
    # the same transition decided again (a redelivery) queues its alert once
    assert store.save_source_status(failing, 2, alert=_alert("feed|failing|1"))
    stored = other.source_statuses()["feed"]
    assert (stored.status, stored.failures, stored.version, stored.incident_since) == ("failing", 3, 3, T0)
    assert [a.id for a in other.source_alerts_to_send()] == ["feed|failing|1"]
    assert other.items_since(T0 - timedelta(seconds=1)) == {"feed": 4}
    assert other.items_since(T0) == {"feed": 0}  # the failed poll, after T0, published nothing
    assert store.outbox_pending()["source_alert"] == 1


def test_a_source_alert_is_claimed_by_exactly_one_sender(opener: Opener) -> None:  # noqa: F811
    host_a, host_b = opener(), opener()
    host_a.save_source_status(_status(), 0, alert=_alert("feed|failing|1"))
    assert host_a.claim_source_alert("feed|failing|1", "a", T0, LEASE)
    assert not host_b.claim_source_alert("feed|failing|1", "b", T0 + timedelta(minutes=1), LEASE)  # a holds it
    assert host_b.source_alerts_to_send()[0].state == "pending"
    assert host_a.claim_source_alert("feed|failing|1", "a", T0 + timedelta(minutes=1), LEASE)  # a's restart
    assert host_b.claim_source_alert("feed|failing|1", "b", T0 + timedelta(minutes=7), LEASE)  # lease ran out
    assert not host_a.claim_source_alert("feed|failing|1", "a", T0 + timedelta(minutes=8), LEASE)  # b's now
    host_b.mark_source_alert_sent("feed|failing|1", "C1/2.3", T0 + timedelta(minutes=8))
    assert host_a.source_alerts_to_send() == [] and host_a.outbox_pending()["source_alert"] == 0
    assert not host_a.claim_source_alert("feed|failing|1", "a", T0 + timedelta(days=1), LEASE)  # sent: never again
    assert not host_a.claim_source_alert("no-such-alert", "a", T0, LEASE)
    [sent] = host_a.source_alerts_between(None, T0 + timedelta(days=1))
    assert (sent.state, sent.ref, sent.kind, sent.detail, sent.failures, sent.since) == (
        "sent", "C1/2.3", "failing", "HTTP 503", 3, T0)


def test_senders_racing_on_two_connections_claim_each_alert_once(opener: Opener) -> None:  # noqa: F811
    writer = opener()
    for i in range(30):
        writer.save_source_status(_status(f"feed{i}"), 0, alert=_alert(f"feed{i}|failing|1", source=f"feed{i}"))
    taken: dict[str, list[str]] = {"a": [], "b": []}

    def sender(name: str, store: StateStore) -> None:
        for alert in store.source_alerts_to_send():
            if store.claim_source_alert(alert.id, name, T0, LEASE):
                taken[name].append(alert.id)

    threads = [threading.Thread(target=sender, args=(n, opener())) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken["a"] + taken["b"]) == sorted(f"feed{i}|failing|1" for i in range(30))  # each once


def test_source_alerts_between_and_pruning(opener: Opener) -> None:  # noqa: F811
    store = opener()
    store.save_source_status(_status(), 0, poll=SourcePoll(T0 - timedelta(days=10), 1, None),
                             alert=_alert("feed|failing|old", minutes=-14400))
    store.save_source_status(_status(), 1, poll=SourcePoll(T0, 2, None), alert=_alert("feed|recovered|new", "recovered"))
    assert [a.id for a in store.source_alerts_between(T0 - timedelta(days=1), T0)] == ["feed|recovered|new"]
    old = _article("old", "o", "포항", 0)
    store.write_stories([StoryWrite(_story("gone", old), article_id="old", copy=old)], T0 - timedelta(days=10))
    kept = _article("kept", "o", "포항", 0)
    store.write_stories([StoryWrite(_story("kept", kept), article_id="kept", copy=kept)], T0 - timedelta(days=10))
    assert store.prune_issue_17(timedelta(days=7), T0) == 1  # the old poll; the old alert is not sent yet
    store.claim_source_alert("feed|failing|old", "a", T0, LEASE)
    store.mark_source_alert_sent("feed|failing|old", "webhook", T0)
    store.write_stories([StoryWrite(_story("kept", kept), article_id="kept")], T0)
    assert store.prune_stories(timedelta(days=7), T0) == 1  # "gone"
    assert store.prune_issue_17(timedelta(days=7), T0) == 2  # the sent alert, and the copy no story lists
    assert [c.article_id for c in store.story_copies("kept")] == ["kept"]
    assert store.items_since(T0 - timedelta(days=30)) == {"feed": 2}


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_dashboards_handle_reads_what_the_pipeline_wrote(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
) -> None:
    state: dict = {"kind": kind}
    if kind == "postgres":
        monkeypatch.setenv("NEWSRADAR_DATABASE_URL", request.getfixturevalue("postgres_dsn"))
    settings = config.parse({"state_dir": str(tmp_path / "state"), "state": state}, "contract")
    writer = open_store(settings)
    reader = open_reader(settings)
    try:
        lead = _article("a", "경북일보", "포항 이차전지", 0)
        writer.write_stories([StoryWrite(_story("s1", lead), article_id="a", copy=lead)], T0)
        writer.save_source_status(_status(), 0, poll=SourcePoll(T0, 3, None))
        reader.ping()
        assert [s.id for s in reader.recent_stories()] == ["s1"]
        assert [c.outlet for c in reader.story_copies("s1")] == ["경북일보"]
        assert reader.source_statuses()["feed"].status == "healthy"
        if kind == "sqlite":  # a read-only connection: a write through it fails loudly and changes nothing
            with pytest.raises(StateError, match="write failed"):
                reader.save_source_status(_status(failures=5), 1)
            assert writer.source_status("feed").failures == 0  # type: ignore[union-attr]
    finally:
        reader.close()
        writer.close()
