"""The state store: validators, seen ids by time, story records, idempotency keys; loud on disk failure."""

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from newsradar.errors import PermanentError
from newsradar.events import Article, Story
from newsradar.store import Store

T0 = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)


def _story(sid: str, terms=("포항",), copies=1) -> Story:
    lead = Article(id=f"{sid}-a", source="s", outlet="o", url="u", title="포항", text="")
    return Story(id=sid, lead=lead, first_seen=T0, outlets=("o",), copies=copies, terms=terms)


def test_validators_and_seen_survive_reopen(tmp_path):
    store = Store(tmp_path / "s.db")
    store.set_validators("src", "http://x/feed", '"e1"', "Mon, 23 Nov 2026 00:00:00 GMT")
    store.mark_seen("src", ["a", "b"], T0)
    store.close()
    store = Store(tmp_path / "s.db")
    assert store.validators("src", "http://x/feed") == ('"e1"', "Mon, 23 Nov 2026 00:00:00 GMT")
    assert store.is_seen("src", "a") and not store.is_seen("other", "a")


def test_seen_ids_are_kept_by_time_not_count(tmp_path):
    store = Store(tmp_path / "s.db")
    store.mark_seen("src", [f"old{i}" for i in range(50)], T0 - timedelta(days=31))
    store.mark_seen("src", ["new"], T0 - timedelta(days=29))
    assert store.prune_seen(timedelta(days=30), T0) == 50
    assert store.is_seen("src", "new") and not store.is_seen("src", "old0")


def test_relevant_stories_window_and_relevance_time_is_kept(tmp_path):
    store = Store(tmp_path / "s.db")
    store.save_story(_story("s1"), "a1", T0)
    store.save_story(_story("s2", terms=()), "a2", T0)  # not relevant: never in a digest
    store.save_story(_story("s1", copies=2), "a3", T0 + timedelta(hours=5))  # an update keeps relevant_at
    got = store.relevant_stories(None, T0 + timedelta(hours=6))
    assert [s.id for s in got] == ["s1"] and got[0].copies == 2
    assert store.relevant_stories(T0, T0 + timedelta(hours=6)) == []
    assert store.story_has_article("s1", "a3") and not store.story_has_article("s1", "zz")


def test_absorbed_story_leaves_the_digest_and_its_relevance_time_carries_over(tmp_path):
    store = Store(tmp_path / "s.db")
    store.save_story(_story("early"), "a1", T0)  # relevant since T0, perhaps in yesterday's digest already
    store.save_story(_story("late", terms=()), "a2", T0 + timedelta(hours=2))
    store.absorb_story(_story("late", copies=2), "early", T0 + timedelta(hours=3))
    assert store.story("early") is None
    assert store.story_has_article("late", "a1") and store.story_has_article("late", "a2")
    got = store.relevant_stories(None, T0 + timedelta(hours=4))
    assert [s.id for s in got] == ["late"] and got[0].copies == 2
    assert store.relevant_stories(T0, T0 + timedelta(hours=4)) == []  # relevant from T0, as "early" was


def test_alert_and_digest_keys(tmp_path):
    store = Store(tmp_path / "s.db")
    assert store.alert("s1", "#c") is None
    store.record_alert("s1", "#c", "pending", None, 1)
    store.record_alert("s1", "#c", "sent", "123.456", 1)
    assert store.alert("s1", "#c") == ("sent", "123.456", 1)
    store.record_digest("2026-11-23", "a@x", "pending", T0, None)
    assert store.last_digest_cutoff("a@x") is None  # pending does not move the cut-off
    store.record_digest("2026-11-23", "a@x", "sent", T0, T0)
    assert store.digest_state("2026-11-23", "a@x") == "sent"
    assert store.last_digest_cutoff("a@x") == T0


def test_read_only_database_is_a_loud_permanent_error(tmp_path):
    path = tmp_path / "s.db"
    Store(path).close()
    ro = Store(path)
    ro._conn.close()
    ro._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    with pytest.raises(PermanentError, match="write failed"):
        ro.mark_seen("src", ["a"], T0)
    with pytest.raises(PermanentError, match="write failed"):
        ro.record_alert("s", "#c", "sent", "1", 1)


def test_grouping_claim_tells_a_stand_by_that_its_index_is_stale(tmp_path):
    store = Store(tmp_path / "s.db")
    assert store.claim_grouping("a") is False  # first writer ever
    assert store.claim_grouping("a") is False  # still us
    assert store.claim_grouping("b") is True   # b takes over: reload
    assert store.claim_grouping("a") is True   # and back
