# ruff: noqa: F811 - ``opener`` is the contract suite's two-store fixture, imported, then asked for by name
"""The state store's issue-18 block, on SQLite and on a real PostgreSQL: held alerts, release and roll-up
claims, digest claims and parts, first polls, recent stories. Claims are raced from several threads on
separate store objects (separate connections, as notifiers on separate hosts would be): one wins each."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import TypeVar

from newsradar.store import StateStore
from newsradar.store.sqlite import SqliteStore
from tests.concurrency import race as run_together
from tests.contracts.test_store import T0, Opener, _story, opener  # noqa: F401 - the two-store fixture

T = TypeVar("T")
LEASE = timedelta(minutes=2)


def race(stores: list[StateStore], claim: Callable[[StateStore, int], T]) -> list[T]:
    """Run ``claim`` on every store at once (one thread each); results in store order."""
    return run_together(*(partial(claim, store, k) for k, store in enumerate(stores)))


def test_a_held_alert_is_held_once_listed_and_dropped(opener: Opener):
    store = opener()
    assert store.hold_alert("s1", "#news", 1, T0) is True
    assert store.hold_alert("s1", "#news", 2, T0 + timedelta(minutes=1)) is False  # already in the outbox
    store.record_alert("s2", "#news", "sent", "C1/1.0", 1)
    assert store.hold_alert("s2", "#news", 1, T0) is False  # alerted already: nothing held
    assert store.hold_alert("s3", "#other", 1, T0 + timedelta(minutes=5)) is True
    assert store.alert("s1", "#news") == ("held", None, 1)
    assert [(s, c) for s, c, _ in opener().held_alerts()] == [("s1", "#news"), ("s3", "#other")]
    assert [s for s, _, at in store.held_alerts("#news")] == ["s1"] and store.held_alerts("#news")[0][2] == T0
    store.drop_alert("s2", "#news")  # not held: kept
    store.drop_alert("s1", "#news")
    assert store.alert("s1", "#news") is None and store.alert("s2", "#news") is not None


def test_a_held_alert_follows_its_story_into_a_survivor(opener: Opener):
    store = opener()
    store.save_story(_story("a"), "a1", T0)
    store.save_story(_story("b"), "b1", T0)
    store.hold_alert("b", "#news", 1, T0)
    store.absorb_story(_story("a", copies=2), "b", T0)
    assert store.alert("a", "#news") == ("held", None, 1) and store.alert("b", "#news") is None


def test_racing_one_by_one_claims_split_the_held_alerts_without_overlap(opener: Opener):
    stores = [opener() for _ in range(4)]
    ids = [f"s{i}" for i in range(12)]
    for sid in ids:
        stores[0].hold_alert(sid, "#news", 1, T0)
    stores[0].hold_alert("x", "#other", 1, T0)
    got = race(stores, lambda s, k: s.claim_held("#news", list(reversed(ids)) if k % 2 else ids, "release", T0))
    claimed = [sid for part in got for sid in part]
    assert sorted(claimed) == sorted(ids)  # every one claimed, none twice
    assert all(stores[1].alert(sid, "#news") == ("pending", "release", 1) for sid in ids)
    assert stores[1].alert("x", "#other")[0] == "held"  # another channel: untouched
    assert stores[2].claim_held("#news", ids, "release", T0) == []


def test_racing_rollups_claim_each_story_once_and_record_only_what_they_claimed(opener: Opener):
    stores = [opener() for _ in range(3)]
    ids = [f"s{i}" for i in range(6)]
    for sid in ids:
        stores[0].hold_alert(sid, "#news", 1, T0)
    got = race(stores, lambda s, k: s.begin_rollup(f"r{k}", "#news", ids, T0))
    assert sorted(sid for part in got for sid in part) == sorted(ids)
    pending = stores[0].pending_rollups()
    assert {r for r, _, _ in pending} == {f"r{k}" for k, part in enumerate(got) if part}
    assert all(story_ids == got[int(r[1:])] for r, _, story_ids in pending)
    winner = next(k for k, part in enumerate(got) if part)
    assert stores[0].alert(got[winner][0], "#news") == ("pending", f"rollup:r{winner}", 1)


def test_a_rollup_is_finished_once_and_found_by_its_message(opener: Opener):
    store = opener()
    for sid in ("a", "b"):
        store.hold_alert(sid, "#news", 1, T0)
    assert store.begin_rollup("r1", "#news", ["a", "b", "zz"], T0) == ["a", "b"]  # zz was never held
    store.finish_rollup("r1", "C1/17.5", {"a": 3, "b": 1})
    assert store.pending_rollups() == [] and opener().rollup_stories("C1/17.5") == ["a", "b"]
    assert store.alert("a", "#news") == ("sent", "C1/17.5", 3) and store.alert("b", "#news") == ("sent", "C1/17.5", 1)
    assert store.rollup_stories("C1/99.0") is None
    store.finish_rollup("no-such-rollup", "C1/18.0", {"a": 9})  # nothing to finish: nothing changes
    assert store.alert("a", "#news") == ("sent", "C1/17.5", 3)


def test_a_dead_holders_rollup_is_taken_over_by_one_caller_after_the_lease(opener: Opener):
    stores = [opener() for _ in range(3)]
    stores[0].hold_alert("a", "#news", 1, T0)
    stores[0].begin_rollup("r1", "#news", ["a"], T0)
    assert stores[1].take_over_rollups(T0, T0 + timedelta(seconds=30)) == []  # within the lease
    later = T0 + LEASE + timedelta(seconds=1)
    got = race(stores, lambda s, k: s.take_over_rollups(later - LEASE, later))
    assert sorted(got, key=len) == [[], [], [("r1", "#news", ["a"])]]
    assert stores[0].take_over_rollups(later - LEASE, later) == []  # re-claimed at ``later``


def test_a_dead_holders_release_is_taken_over_by_one_caller_after_the_lease(opener: Opener):
    stores = [opener() for _ in range(3)]
    for sid in ("a", "b"):
        stores[0].hold_alert(sid, "#news", 1, T0)
    stores[0].claim_held("#news", ["a", "b"], "release", T0)
    stores[0].record_alert("b", "#news", "sent", "C1/2.0", 1)  # b went out before the holder died
    assert stores[1].take_over_releases("release", T0, T0 + timedelta(seconds=30)) == []
    later = T0 + LEASE + timedelta(seconds=1)
    got = race(stores, lambda s, k: s.take_over_releases("release", later - LEASE, later))
    assert sorted(got, key=len) == [[], [], [("a", "#news")]]
    assert stores[0].take_over_releases("other", later, later) == []


def test_the_digest_claim_lets_one_owner_send_and_a_dead_ones_be_taken_over(opener: Opener):
    store, other = opener(), opener()
    day, key = "2026-11-23", "slack:#news"
    assert store.claim_digest(day, key, "host-a:1", T0, T0, T0 - LEASE) == T0
    assert other.claim_digest(day, key, "host-b:2", T0 + timedelta(minutes=1), T0 + timedelta(minutes=1),
                              T0 + timedelta(minutes=1) - LEASE) is None  # held, and fresh  # fmt: skip
    renewed = T0 + timedelta(minutes=2)
    assert store.claim_digest(day, key, "host-a:1", renewed, renewed, renewed - LEASE) == T0  # the owner, again
    late = renewed + LEASE + timedelta(seconds=1)
    assert other.claim_digest(day, key, "host-b:2", late, late, late - LEASE) == T0  # taken over: first cut-off
    assert store.claim_digest(day, key, "host-a:1", late, late, late - LEASE) is None  # host-a lost it
    store.release_digest(day, key, "host-a:1")  # not the owner: nothing happens
    assert store.claim_digest(day, key, "host-c:3", late, late, late - LEASE) is None
    other.record_digest(day, key, "sent", cutoff=T0, sent_at=late)
    other.release_digest(day, key, "host-b:2")
    assert store.claim_digest(day, key, "host-c:3", late, late, late - LEASE) is None  # sent: nobody sends again
    assert store.claim_digest("2026-11-24", key, "host-c:3", late, late, late - LEASE) == late  # the next day


def test_a_released_digest_claim_may_be_taken_at_once(opener: Opener):
    store = opener()
    assert store.claim_digest("d", "a@example.kr", "one", T0, T0, T0 - LEASE) == T0
    store.release_digest("d", "a@example.kr", "one")  # a failed attempt gives the claim back
    later = T0 + timedelta(seconds=5)
    assert opener().claim_digest("d", "a@example.kr", "two", later, later, later - LEASE) == later


def test_racing_digest_claims_have_exactly_one_winner(opener: Opener):
    stores = [opener() for _ in range(6)]
    for round_ in range(3):
        day = f"day{round_}"
        got = race(stores, lambda s, k, day=day: s.claim_digest(day, "slack:#news", f"owner{k}", T0, T0, T0 - LEASE))
        assert [g for g in got if g is not None] == [T0], got


def test_digest_parts_first_polls_and_recent_stories(opener: Opener):
    store = opener()
    assert store.digest_part("d", "slack:#news", "1") is None
    store.record_digest_part("d", "slack:#news", "1", "pending", None)
    store.record_digest_part("d", "slack:#news", "1", "sent", "C1/5.0")
    store.record_digest_part("d", "slack:#news", "chart", "skipped", None)
    reopened = opener()
    assert reopened.digest_part("d", "slack:#news", "1") == ("sent", "C1/5.0")
    assert reopened.digest_part("d", "slack:#news", "chart") == ("skipped", None)
    assert store.first_poll("feed") is None
    store.record_first_poll("feed", T0)
    store.record_first_poll("feed", T0 + timedelta(hours=1))  # the first one stays
    assert reopened.first_poll("feed") == T0
    store.save_story(_story("old"), "o1", T0 - timedelta(days=20))
    store.save_story(_story("new"), "n1", T0)
    store.save_story(_story("plain", terms=()), "p1", T0)  # never relevant: not in the chart
    assert [s.id for s in reopened.stories_touched_since(T0 - timedelta(days=15))] == ["new"]


def test_relaxed_sent_records_and_leases_are_seen_at_once_and_sync_keeps_durable_ones_durable(opener: Opener):
    """A 'sent' record written with durable=False and a lease are visible to every store object at once (as to
    other processes); ``sync`` is a durable write. A 'pending' record is durable whatever it is asked."""
    store, other = opener(), opener()
    store.record_alert("s1", "#news", "pending", None, 1, durable=False)
    store.record_alert("s2", "#news", "sent", "C1/1.0", 2, durable=False)
    assert store.take_lease("alert:s1:#news", "me", T0 + timedelta(minutes=2), T0)
    assert other.alert("s1", "#news") == ("pending", None, 1) and other.alert("s2", "#news") == ("sent", "C1/1.0", 2)
    assert not other.take_lease("alert:s1:#news", "you", T0 + timedelta(minutes=2), T0)  # held: seen at once
    store.sync()
    store.drop_lease("alert:s1:#news", "me")
    assert other.take_lease("alert:s1:#news", "you", T0 + timedelta(minutes=2), T0)
    if isinstance(store, SqliteStore):  # how SQLite does it: one connection, FULL outside the relaxed writes
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_a_batch_of_first_alerts_is_claimed_and_settled_in_one_go(opener: Opener):
    """claim_alerts takes each lease and records 'pending' only where the alert has no record; settle_alerts
    records the sent ones, forgets the untried ones' 'pending' (never anyone else's record), frees the leases."""
    store, other = opener(), opener()
    store.record_alert("old", "#news", "sent", "C1/1.0", 2)
    assert other.take_lease("alert:busy:#news", "you", T0 + LEASE, T0)
    claims = [(f"alert:{sid}:#news", sid, "#news", 3) for sid in ("a", "old", "busy", "b", "c")]
    got = store.claim_alerts(claims, "me", T0 + LEASE, T0)
    assert got == [(True, None), (True, ("sent", "C1/1.0", 2)), (False, None), (True, None), (True, None)]
    assert [other.alert(sid, "#news") for sid in ("a", "old", "busy", "b")] == [
        ("pending", None, 3), ("sent", "C1/1.0", 2), None, ("pending", None, 3)]
    assert not other.take_lease("alert:a:#news", "you", T0 + LEASE, T0)  # held by the batch
    store.record_alert("c", "#news", "pending", "release", 3)  # a release's claim: not the batch's to forget
    store.settle_alerts([("a", "#news", "C1/2.0", 3)], [("b", "#news"), ("c", "#news")],
                        ["alert:a:#news", "alert:old:#news", "alert:b:#news", "alert:c:#news", "alert:busy:#news"],
                        "me")  # fmt: skip
    assert other.alert("a", "#news") == ("sent", "C1/2.0", 3) and other.alert("b", "#news") is None
    assert other.alert("c", "#news") == ("pending", "release", 3)
    assert all(other.take_lease(f"alert:{sid}:#news", "you", T0 + LEASE, T0) for sid in ("a", "old", "b", "c"))
    assert other.lease_holder("alert:busy:#news") == "you"  # not the batch's lease: untouched
    assert store.claim_alerts([], "me", T0 + LEASE, T0) == []
    store.settle_alerts([], [], [], "me")


def test_racing_batches_claim_each_first_alert_once(opener: Opener):
    """Notifiers on several hosts claiming overlapping batches at once, in different orders: each alert's lease
    and 'pending' record go to exactly one of them, and none waits on another forever."""
    stores = [opener() for _ in range(4)]
    ids = [f"s{i:02d}" for i in range(30)]

    def claim(store: StateStore, k: int) -> list[str]:
        mine = ids[k * 5:] + ids[: k * 5] if k % 2 else list(reversed(ids))
        got = store.claim_alerts([(f"alert:{sid}:#news", sid, "#news", 1) for sid in mine], f"owner-{k}",
                                 T0 + LEASE, T0)  # fmt: skip
        return [sid for sid, (taken, before) in zip(mine, got, strict=True) if taken and before is None]

    won = race(stores, claim)
    assert sorted(sid for mine in won for sid in mine) == ids
    assert all(stores[0].alert(sid, "#news") == ("pending", None, 1) for sid in ids)
