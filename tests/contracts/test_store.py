"""One contract for every state store: SQLite and PostgreSQL (a real server) must behave alike.

Each test gets fresh storage: its own SQLite file, or its own database on the shared server. Beside the
contract: what is particular to each (a read-only SQLite file, concurrent openers on a fresh file, a
PostgreSQL server that goes away and comes back, and the DSN never showing in errors).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from newsradar.errors import PermanentError, StateError, TransientError
from newsradar.events import Article, Story
from newsradar.store import GroupingDecision, SqliteStore, StateStore, StoryWrite
from newsradar.store.postgres import PostgresStore
from tests.concurrency import race
from tests.servers.postgres import running_server

T0 = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)
Opener = Callable[[], StateStore]


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens stores on one test's storage (each call: a new store object, as a new process would)."""
    opened: list[StateStore] = []
    if request.param == "sqlite":
        path = tmp_path / "state.db"

        def open_one() -> StateStore:
            opened.append(SqliteStore(path))
            return opened[-1]
    else:
        dsn = request.getfixturevalue("postgres_dsn")

        def open_one() -> StateStore:
            opened.append(PostgresStore(dsn, pool_size=2, connect_timeout=5))
            return opened[-1]

    yield open_one
    for store in opened:
        store.close()


def _story(sid: str, terms=("포항",), copies=1) -> Story:
    lead = Article(id=f"{sid}-a", source="s", outlet="o", url="u", title="포항", text="")
    return Story(id=sid, lead=lead, first_seen=T0, outlets=("o",), copies=copies, terms=terms)


def _decision(article: str, story: str, t: float = 100.0, absorbed=(), roundup=False) -> GroupingDecision:
    return GroupingDecision(article, story, b"sig-" + article.encode(), t, tuple(absorbed), roundup)


# --- the contract --------------------------------------------------------------------------------------


def test_validators_and_seen_survive_reopen(opener: Opener):
    store = opener()
    store.set_validators("src", "http://x/feed", '"e1"', "Mon, 23 Nov 2026 00:00:00 GMT")
    store.set_validators("src", "http://x/feed", '"e2"', None)
    store.mark_seen("src", ["a", "b"], T0)
    store.close()
    store = opener()
    assert store.validators("src", "http://x/feed") == ('"e2"', None)
    assert store.validators("src", "http://y") == (None, None)
    assert store.is_seen("src", "a") and not store.is_seen("other", "a")


def test_seen_among_answers_a_polls_ids_at_once(opener: Opener):
    store = opener()
    store.mark_seen("src", [f"id{i}" for i in range(0, 1200, 2)], T0)  # every other one, past one IN-list chunk
    asked = [f"id{i}" for i in range(1200)] + ["id0", "never"]
    assert store.seen_among("src", asked) == {f"id{i}" for i in range(0, 1200, 2)}
    assert store.seen_among("other", asked) == set() and store.seen_among("src", []) == set()


def test_seen_ids_are_kept_by_time_not_count(opener: Opener):
    store = opener()
    store.mark_seen("src", [f"old{i}" for i in range(50)], T0 - timedelta(days=31))
    store.mark_seen("src", ["new"], T0 - timedelta(days=29))
    assert store.prune_seen(timedelta(days=30), T0) == 50
    assert store.is_seen("src", "new") and not store.is_seen("src", "old0")


def test_relevant_stories_window_and_relevance_time_is_kept(opener: Opener):
    store = opener()
    store.save_story(_story("s1"), "a1", T0)
    store.save_story(_story("s2", terms=()), "a2", T0)  # not relevant: never in a digest
    store.save_story(_story("s1", copies=2), "a3", T0 + timedelta(hours=5))  # an update keeps relevant_at
    got = store.relevant_stories(None, T0 + timedelta(hours=6))
    assert [s.id for s in got] == ["s1"] and got[0].copies == 2
    assert store.relevant_stories(T0, T0 + timedelta(hours=6)) == []
    assert store.story_has_article("s1", "a3") and not store.story_has_article("s1", "zz")
    assert store.story("s2") == _story("s2", terms=()) and store.story("nope") is None


def test_absorbed_story_leaves_the_digest_and_its_relevance_time_carries_over(opener: Opener):
    store = opener()
    store.save_story(_story("early"), "a1", T0)  # relevant since T0, perhaps in yesterday's digest already
    store.save_story(_story("late", terms=()), "a2", T0 + timedelta(hours=2))
    store.absorb_story(_story("late", copies=2), "early", T0 + timedelta(hours=3))
    assert store.story("early") is None
    assert store.story_has_article("late", "a1") and store.story_has_article("late", "a2")
    got = store.relevant_stories(None, T0 + timedelta(hours=4))
    assert [s.id for s in got] == ["late"] and got[0].copies == 2
    assert store.relevant_stories(T0, T0 + timedelta(hours=4)) == []  # relevant from T0, as "early" was


def test_an_absorbed_story_hands_its_alert_over_only_where_the_survivor_has_none(opener: Opener):
    store = opener()
    store.save_story(_story("a"), "a1", T0)
    store.save_story(_story("b"), "b1", T0)
    store.record_alert("a", "#one", "sent", "C1/1.0", 1)
    store.record_alert("a", "#two", "sent", "C2/1.0", 1)
    store.record_alert("b", "#two", "sent", "C2/2.0", 1)
    store.absorb_story(_story("b", copies=2), "a", T0 + timedelta(hours=1))
    assert store.alert("b", "#one") == ("sent", "C1/1.0", 1)  # handed over: edited from now on
    assert store.alert("b", "#two") == ("sent", "C2/2.0", 1)  # both posted: both stay
    assert store.alert("a", "#two") == ("sent", "C2/1.0", 1)


def test_story_writes_apply_in_order_as_one_batch(opener: Opener):
    store = opener()
    store.write_stories([StoryWrite(_story("x"), article_id="x1"), StoryWrite(_story("y"), article_id="y1"),
                         StoryWrite(_story("y", copies=3), article_id="y2", absorbed_id="x")], T0)  # fmt: skip
    assert store.story("x") is None and store.story("y").copies == 3  # type: ignore[union-attr]
    assert all(store.story_has_article("y", a) for a in ("x1", "y1", "y2"))


def test_alert_and_digest_keys(opener: Opener):
    store = opener()
    assert store.alert("s1", "#c") is None
    store.record_alert("s1", "#c", "pending", None, 1)
    assert store.alert("s1", "#c") == ("pending", None, 1)
    store.record_alert("s1", "#c", "sent", "123.456", 1)
    assert store.alert("s1", "#c") == ("sent", "123.456", 1)
    store.record_digest("2026-11-23", "a@x", "pending", T0, None)
    assert store.last_digest_cutoff("a@x") is None  # pending does not move the cut-off
    store.record_digest("2026-11-23", "a@x", "sent", T0, T0)
    assert store.digest_state("2026-11-23", "a@x") == "sent" and store.digest_state("2026-11-24", "a@x") is None
    assert store.last_digest_cutoff("a@x") == T0


def test_grouping_claim_tells_a_stand_by_that_its_index_is_stale(opener: Opener):
    store = opener()
    assert store.claim_grouping("a") is False  # first writer ever
    assert store.claim_grouping("a") is False  # still us
    assert store.claim_grouping("b") is True  # b takes over: reload
    assert store.claim_grouping("a") is True  # and back


def test_a_grouping_batch_is_written_whole_and_replays_in_decision_order(opener: Opener):
    store = opener()
    store.claim_grouping("w")
    assert store.commit_grouping("w", [_decision("a1", "s-a1"), _decision("a2", "s-a1", roundup=True)],
                                 [StoryWrite(_story("s-a1"), article_id="a1")], T0)  # fmt: skip
    assert store.commit_grouping("w", [_decision("a3", "s-a3"), _decision("a1", "s-other")], [], T0)  # a1 kept
    reopened = opener()
    assert [(r.article_id, r.story_id, r.signature) for r in reopened.grouping_rows()] == [
        ("a1", "s-a1", b"sig-a1"), ("a2", "s-a1", b"sig-a2"), ("a3", "s-a3", b"sig-a3")]  # fmt: skip
    assert reopened.grouping_story_of("a1") == "s-a1" and reopened.grouping_story_of("zz") is None
    assert reopened.grouping_roundups() == {"s-a1"}
    assert reopened.story_has_article("s-a1", "a1")


def test_a_story_written_several_times_in_one_batch_ends_in_its_last_state(opener: Opener):
    store = opener()
    store.claim_grouping("w")
    writes = [StoryWrite(_story("s1", copies=n), article_id=f"a{n}") for n in (1, 2, 3)]
    writes.insert(1, StoryWrite(_story("s2", terms=()), article_id="b1"))
    assert store.commit_grouping("w", [_decision(a, "s1") for a in ("a1", "a2", "a3")] + [_decision("b1", "s2")],
                                 writes, T0)  # fmt: skip
    reopened = opener()
    stored = reopened.story("s1")
    assert stored is not None and stored.copies == 3
    assert all(reopened.story_has_article("s1", a) for a in ("a1", "a2", "a3"))
    assert [r.article_id for r in reopened.grouping_rows()] == ["a1", "a2", "a3", "b1"]  # in decision order
    assert reopened.story("s2") is not None and reopened.story_has_article("s2", "b1")


def test_a_story_that_gains_terms_within_a_batch_is_relevant_and_a_fold_keeps_its_place(opener: Opener):
    store = opener()
    store.claim_grouping("w")
    writes = [StoryWrite(_story("s1", terms=()), article_id="a1"), StoryWrite(_story("s2"), article_id="b1"),
              StoryWrite(_story("s1", copies=2), article_id="a2"),  # a watched term arrives with the second copy
              StoryWrite(_story("s1", copies=3), absorbed_id="s2"),  # s2 folded into s1 between s1's writes
              StoryWrite(_story("s1", copies=4), article_id="a3")]  # fmt: skip
    decisions = [_decision("a1", "s1"), _decision("b1", "s2"), _decision("a2", "s1"),
                 _decision("a3", "s1", absorbed=("s2",))]  # fmt: skip
    assert store.commit_grouping("w", decisions, writes, T0)
    reopened = opener()
    assert [s.id for s in reopened.relevant_stories(None, T0 + timedelta(hours=1))] == ["s1"]
    stored = reopened.story("s1")
    assert stored is not None and stored.copies == 4 and reopened.story("s2") is None
    assert all(reopened.story_has_article("s1", a) for a in ("a1", "a2", "a3", "b1"))


def test_a_merge_relabels_the_absorbed_stories_and_is_remembered_by_its_article(opener: Opener):
    store = opener()
    store.claim_grouping("w")
    store.commit_grouping("w", [_decision("a1", "s1"), _decision("b1", "s2"), _decision("c1", "s3")], [], T0)
    store.commit_grouping("w", [_decision("b2", "s2", absorbed=("s3",))], [], T0)  # s3 into s2
    store.commit_grouping("w", [_decision("a2", "s1", absorbed=("s2",))], [], T0)  # then s2 (with s3) into s1
    assert {r.article_id: r.story_id for r in store.grouping_rows()} == {a: "s1" for a in ("a1", "b1", "c1", "b2", "a2")}
    assert store.grouping_survivors() == {"s2": "s1", "s3": "s1"}
    assert store.grouping_merged_by("a2") == ("s2",) and store.grouping_merged_by("b2") == ("s3",)


def test_a_grouper_that_lost_its_claim_writes_nothing(opener: Opener):
    store, other = opener(), opener()
    store.claim_grouping("old")
    other.claim_grouping("new")  # a stand-by took over
    assert store.commit_grouping("old", [_decision("a1", "s1")], [StoryWrite(_story("s1"), article_id="a1")], T0) is False
    assert list(store.grouping_rows()) == [] and store.story("s1") is None
    assert other.commit_grouping("new", [_decision("a1", "s1")], [], T0) is True


def test_grouping_decisions_are_evicted_by_time_and_a_new_signature_version_blanks_old_signatures(opener: Opener):
    store = opener()
    store.claim_grouping("w")
    store.commit_grouping("w", [_decision("old", "s1", t=10.0, roundup=True),
                                _decision("new", "s2", t=500.0, absorbed=("s1",))], [], T0)  # fmt: skip
    assert store.grouping_evict(100.0) == 1
    assert [r.article_id for r in store.grouping_rows()] == ["new"] and store.grouping_roundups() == set()
    assert store.grouping_signature_version("4") is False  # the first version recorded
    assert store.grouping_signature_version("4") is False
    assert store.grouping_signature_version("5") is True
    assert [(r.article_id, r.signature) for r in store.grouping_rows()] == [("new", b"")]  # known, not comparable
    assert store.grouping_story_of("new") == "s2"


def test_stories_are_pruned_by_last_update(opener: Opener):
    store = opener()
    store.save_story(_story("old"), "a1", T0 - timedelta(days=40))
    store.save_story(_story("new"), "a2", T0)
    assert store.prune_stories(timedelta(days=30), T0) == 1
    assert store.story("old") is None and not store.story_has_article("old", "a1") and store.story("new")
    assert store.stats()["stories"] == 1


def test_writers_on_several_threads_and_connections_lose_nothing(opener: Opener):
    stores = [opener(), opener()]

    def work(k: int) -> None:
        for i in range(30):
            stores[k % 2].mark_seen(f"src{k}", [f"{k}-{i}"], T0)
            stores[k % 2].record_alert(f"s{k}-{i}", "#c", "sent", "x", 1)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stores[0].stats()["seen"] == 120 and stores[1].stats()["alerts"] == 120


def test_a_lease_goes_to_one_asker_at_a_time_and_passes_on_when_it_runs_out_or_is_dropped(opener: Opener):
    a, b = opener(), opener()
    key = "digest:2026-11-23:watcher@example.com"
    assert a.take_lease(key, "A", T0 + timedelta(minutes=5), T0)
    assert not b.take_lease(key, "B", T0 + timedelta(minutes=5), T0 + timedelta(minutes=1))  # A's still runs
    assert a.take_lease(key, "A", T0 + timedelta(minutes=9), T0 + timedelta(minutes=2))  # renewed by its holder
    assert not b.take_lease(key, "B", T0 + timedelta(minutes=12), T0 + timedelta(minutes=6))  # renewed: still A's
    assert b.take_lease(key, "B", T0 + timedelta(minutes=14), T0 + timedelta(minutes=9))  # ran out: B's now
    a.drop_lease(key, "A")  # not A's any more: dropping it does nothing
    assert not a.take_lease(key, "A", T0 + timedelta(minutes=15), T0 + timedelta(minutes=10))
    b.drop_lease(key, "B")
    assert a.take_lease(key, "A", T0 + timedelta(minutes=15), T0 + timedelta(minutes=10))


def test_a_running_lease_passes_only_to_an_asker_replacing_its_holder(opener: Opener):
    a, b, c = opener(), opener(), opener()
    key = "alert:s1:#news"
    assert b.lease_holder(key) is None
    assert a.take_lease(key, "A", T0 + timedelta(minutes=2), T0)
    assert b.lease_holder(key) == "A"
    assert not b.take_lease(key, "B", T0 + timedelta(minutes=2), T0, replacing="someone else")  # A's still runs
    assert b.take_lease(key, "B", T0 + timedelta(minutes=2), T0, replacing="A")  # A is known dead: B's now
    assert not c.take_lease(key, "C", T0 + timedelta(minutes=2), T0, replacing="A")  # of two replacing A, one wins
    assert a.lease_holder(key) == "B"
    b.drop_lease(key, "B")
    assert a.lease_holder(key) is None


def test_of_many_asking_at_once_exactly_one_gets_the_lease(opener: Opener):
    stores = [opener() for _ in range(4)]
    won: list[int] = []
    barrier = threading.Barrier(8)

    def ask(k: int) -> None:
        barrier.wait()
        if stores[k % 4].take_lease("alert:s1:#news", f"owner-{k}", T0 + timedelta(minutes=1), T0):
            won.append(k)

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1


# --- what is particular to each ---------------------------------------------------------------------------


def test_read_only_sqlite_file_is_a_loud_permanent_error(tmp_path: Path):
    path = tmp_path / "s.db"
    SqliteStore(path).close()
    ro = SqliteStore(path)
    ro._conn.close()
    ro._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    with pytest.raises(PermanentError, match="write failed"):
        ro.mark_seen("src", ["a"], T0)
    with pytest.raises(PermanentError, match="write failed"):
        ro.record_alert("s", "#c", "sent", "1", 1)


def test_processes_opening_a_fresh_sqlite_file_together_all_come_up(tmp_path: Path):
    """The issue's "database is locked" at start: eight openers racing on a file that does not exist yet."""
    path = tmp_path / "fresh.db"
    race(*[lambda: SqliteStore(path).close()] * 8)  # an error in any of them fails the test


def test_a_postgres_server_going_away_is_transient_and_its_return_is_picked_up():
    with running_server() as server:
        store = PostgresStore(server.new_database(), pool_size=1, connect_timeout=2)
        store.mark_seen("src", ["a"], T0)
        server.stop(kill=True)
        with pytest.raises(TransientError):
            store.mark_seen("src", ["b"], T0)
        server.start()
        for _ in range(20):  # the pool reconnects on its own
            try:
                store.mark_seen("src", ["b"], T0)
                break
            except TransientError:
                threading.Event().wait(0.25)
        assert store.is_seen("src", "a") and store.is_seen("src", "b")
        store.close()


def test_an_unreachable_or_refusing_postgres_is_a_state_error_that_never_shows_the_password():
    with pytest.raises(StateError) as caught:
        PostgresStore("postgresql://newsradar:s3cret-pw@127.0.0.1:1/nowhere", pool_size=1, connect_timeout=1)
    assert "s3cret-pw" not in str(caught.value) and "127.0.0.1:1/nowhere" in str(caught.value)
