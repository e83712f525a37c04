"""One contract for every bus: the embedded SQLite log and Kafka (a real broker) must behave alike.

Each test gets fresh storage: its own SQLite file, or its own topic/group prefix on the shared broker.
Group timings are short so hand-overs take about a second, not the production ten.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from newsradar.bus.base import Bus, Consumer, Delivery
from newsradar.bus.embedded import EmbeddedBus
from newsradar.bus.kafka import KafkaBus
from newsradar.errors import ConfigError, PermanentError, TransientError
from newsradar.events import Article, Match, RawItem, Story, StoryUpdate, stable_id
from tests.concurrency import race

REPO = Path(__file__).resolve().parents[2]
KST = timezone(timedelta(hours=9))
TOPIC = "raw-items"


def open_bus(spec: dict[str, Any]) -> Bus:
    """A new bus object on the storage ``spec`` names (also used by the child processes below)."""
    if spec["kind"] == "embedded":
        return EmbeddedBus(spec["path"], session_timeout=spec["session_timeout"])
    return KafkaBus(
        spec["bootstrap"],
        topic_prefix=spec["prefix"],
        session_timeout_ms=spec["session_timeout_ms"],
        heartbeat_interval_ms=spec["heartbeat_interval_ms"],
        max_poll_interval_ms=spec["max_poll_interval_ms"],
        timeout=spec["timeout"],
    )


@dataclass
class Buses:
    """Opens bus objects on one test's storage and closes everything at teardown."""

    spec: dict[str, Any]
    opened: list[Bus] = field(default_factory=list)
    members: list[Consumer] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return str(self.spec["kind"])

    def open(self, partitions: int | None = None) -> Bus:
        """A new bus object on this test's storage; with ``partitions``, TOPIC is ensured with that many."""
        bus = open_bus(self.spec)
        self.opened.append(bus)
        if partitions is not None:
            bus.ensure_topics({TOPIC: partitions})
        return bus

    def member(self, bus: Bus, group: str, topics: str | list[str] = TOPIC) -> Consumer:
        consumer = bus.consumer(topics, group)
        self.members.append(consumer)
        return consumer

    def close(self) -> None:
        for consumer in self.members:
            consumer.close()
        for bus in self.opened:
            bus.close()


def kafka_spec(bootstrap: str, name: str, timeout: float = 20.0) -> dict[str, Any]:
    """A fresh topic/group prefix on the shared broker, with the short group timings of this suite."""
    return {
        "kind": "kafka",
        "bootstrap": bootstrap,
        "prefix": f"{name}-{uuid.uuid4().hex[:10]}.",
        "session_timeout_ms": 3000,
        "heartbeat_interval_ms": 500,
        "max_poll_interval_ms": 20_000,
        "timeout": timeout,
    }


@pytest.fixture(params=["embedded", pytest.param("kafka", marks=pytest.mark.kafka)])
def buses(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Buses]:
    if request.param == "embedded":
        spec: dict[str, Any] = {"kind": "embedded", "path": str(tmp_path / "bus.db"), "session_timeout": 1.0}
    else:
        broker = request.getfixturevalue("kafka_broker")  # the broker starts only for these tests
        spec = kafka_spec(broker.bootstrap, "contract")
    made = Buses(spec)
    try:
        yield made
    finally:
        made.close()


def item(batch: str, n: int) -> RawItem:
    url = f"https://news.example.kr/{batch}/{n}"
    return RawItem(
        id=stable_id(url),
        source="연합뉴스",
        outlet="연합뉴스",
        url=url,
        canonical_url=url,
        title=f"포항 이차전지 특화단지 {batch} 소식 {n}",
        body="포항시는 이차전지 특화단지 지정 이후 투자 유치가 늘었다고 밝혔다.",
        published_at=datetime(2025, 5, 15, 9, n % 60, tzinfo=KST),
        guid=f"{batch}-{n}",
    )


def publish_items(bus: Bus, batch: str, count: int, keys: Sequence[str] = ("k",)) -> None:
    """``item(batch, n)`` for n in range(count) to TOPIC in one publish_many, keyed in turn by ``keys``."""
    bus.publish_many(TOPIC, [(keys[n % len(keys)], item(batch, n)) for n in range(count)])


def drain(consumer: Consumer, want: int, timeout: float = 30.0) -> list[Delivery]:
    """Poll until ``want`` deliveries arrived (or fail after ``timeout`` seconds, saying what did)."""
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got += consumer.poll(max_records=want - len(got), timeout=0.5)
    assert len(got) >= want, f"expected {want} deliveries within {timeout}s, got {len(got)}: {_ids(got)}"
    return got


def _ids(deliveries: list[Delivery]) -> list[str]:
    return [d.event.guid for d in deliveries]


def alternate(
    members: list[Consumer],
    until: Callable[[list[list[Delivery]]], bool],
    timeout: float = 40.0,
    commit: list[bool] | None = None,
) -> list[list[Delivery]]:
    """Poll each member in turn (each keeps its group session alive) until ``until(received)`` holds."""
    received: list[list[Delivery]] = [[] for _ in members]
    deadline = time.monotonic() + timeout
    while not until(received):
        assert time.monotonic() < deadline, (
            f"group did not get there in {timeout}s: {[_ids(r) for r in received]}"
        )
        for i, member in enumerate(members):
            batch = member.poll(max_records=100, timeout=0.2)
            received[i] += batch
            if batch and (commit is None or commit[i]):
                member.commit(batch)
    return received


# -- the contract ------------------------------------------------------------------------------------


def test_events_survive_the_round_trip(buses: Buses) -> None:
    bus = buses.open(partitions=1)
    raw = item("round", 1)
    article = Article(
        id=raw.id,
        source=raw.source,
        outlet=raw.outlet,
        url=raw.url,
        title=raw.title,
        text="포항 블루밸리 국가산단에 이차전지 소재 공장이 들어선다.",
        published_at=raw.published_at,
        matches=(Match(term="이차전지", surface="이차전지", start=3, end=7, score=100.0),),
    )
    story = Story(
        id="story-1",
        lead=article,
        first_seen=datetime(2025, 5, 15, 9, 0, tzinfo=KST),
        outlets=("연합뉴스", "경북일보"),
        copies=2,
        terms=("이차전지", "포항"),
        snippet="이차전지 소재 공장",
        highlights=((0, 4),),
    )
    update = StoryUpdate(story=story, article_id=article.id, is_new=True)
    sent = [(f"key-{i}", event) for i, event in enumerate([raw, article, update])]
    bus.publish(TOPIC, *sent[0])
    bus.publish_many(TOPIC, sent[1:])

    consumer = buses.member(bus, "round-trip")
    got = drain(consumer, 3)
    assert [(d.key, d.event) for d in got] == sent
    assert all(d.topic == TOPIC for d in got)  # the Kafka prefix never leaks to callers
    assert [d.offset for d in got] == [0, 1, 2]
    assert got[2].event.story.lead.matches[0].surface == "이차전지"


def test_poll_returns_at_most_max_records(buses: Buses) -> None:
    bus = buses.open(partitions=1)
    publish_items(bus, "max", 7)
    consumer = buses.member(bus, "small-polls")
    seen: list[Delivery] = []
    deadline = time.monotonic() + 30
    while len(seen) < 7 and time.monotonic() < deadline:
        batch = consumer.poll(max_records=3, timeout=0.5)
        assert len(batch) <= 3
        seen += batch
    assert [d.event.guid for d in seen] == [f"max-{n}" for n in range(7)]


_CHILD = """
import json, os, sys, time
from tests.contracts.test_bus import item, open_bus
spec, mode, arg = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
bus = open_bus(spec)
if mode == "publish":
    for n in range(int(arg)):
        bus.publish("raw-items", f"key-{n % 3}", item("durable", n))
    os._exit(0)  # no close(), no flush: what publish() returned for must already be durable
consumer = bus.consumer("raw-items", arg)
got = []
while len(got) < 5:
    got += consumer.poll(max_records=5 - len(got), timeout=0.5)
consumer.commit(got[:2])
print("ready", flush=True)
while True:  # keep heartbeating until the parent kills us with SIGKILL
    consumer.poll(max_records=1, timeout=0.5)
"""


def _child(spec: dict[str, Any], mode: str, arg: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, json.dumps(spec), mode, arg],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_publish_is_durable_once_it_returns(buses: Buses) -> None:
    buses.open(partitions=2)
    child = _child(buses.spec, "publish", "6")
    _, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    consumer = buses.member(buses.open(), "after-exit")  # a new bus object, in this process
    got = drain(consumer, 6)
    assert sorted(_ids(got)) == sorted(f"durable-{n}" for n in range(6))


def test_order_per_key_holds_across_partitions(buses: Buses) -> None:
    bus = buses.open(partitions=4)
    keys = [f"outlet-{k}" for k in range(12)]
    sent = [(keys[n % len(keys)], item("order", n)) for n in range(120)]
    for start in range(0, len(sent), 25):  # batches and single publishes interleave keys the same way
        chunk = sent[start : start + 25]
        bus.publish_many(TOPIC, chunk[:-1])
        bus.publish(TOPIC, *chunk[-1])

    got = drain(buses.member(bus, "order"), len(sent))
    by_key: dict[str, list[int]] = {}
    partition_of: dict[str, set[int]] = {}
    for d in got:
        by_key.setdefault(d.key, []).append(int(d.event.guid.split("-")[1]))
        partition_of.setdefault(d.key, set()).add(d.partition)
    assert by_key == {key: [n for n in range(120) if keys[n % len(keys)] == key] for key in keys}
    assert all(len(parts) == 1 for parts in partition_of.values()), partition_of
    assert len(set().union(*partition_of.values())) > 1, (
        "all keys landed in one partition: nothing was tested"
    )


def test_uncommitted_deliveries_come_back_after_a_restart(buses: Buses) -> None:
    bus = buses.open(partitions=1)
    publish_items(bus, "restart", 10)

    first = buses.member(bus, "restart")
    got = drain(first, 10)
    first.commit(got[:4])
    first.close()

    again = buses.member(buses.open(), "restart")
    redelivered = drain(again, 6)
    assert _ids(redelivered) == [f"restart-{n}" for n in range(4, 10)]  # offsets 0-3 were committed
    again.commit(redelivered)
    again.close()
    assert buses.member(buses.open(), "restart").poll(max_records=10, timeout=2.0) == []


def test_committing_a_later_delivery_commits_the_earlier_ones(buses: Buses) -> None:
    bus = buses.open(partitions=1)
    publish_items(bus, "later", 10)
    first = buses.member(bus, "later")
    got = drain(first, 10)
    first.commit([got[6]])
    first.close()
    assert _ids(drain(buses.member(bus, "later"), 3)) == ["later-7", "later-8", "later-9"]


def test_two_groups_each_see_every_event(buses: Buses) -> None:
    bus = buses.open(partitions=3)
    publish_items(bus, "groups", 30, keys=[f"k{k}" for k in range(5)])
    alerts, digest = buses.member(bus, "alerts"), buses.member(bus, "digest")
    got = alternate([alerts, digest], lambda r: all(len(x) >= 30 for x in r))
    expected = sorted(f"groups-{n}" for n in range(30))
    assert sorted(_ids(got[0])) == expected
    assert sorted(_ids(got[1])) == expected


def test_group_members_split_partitions_and_hand_over_on_close(buses: Buses) -> None:
    bus = buses.open(partitions=4)

    def publish(batch: str) -> set[str]:
        publish_items(bus, batch, 40, keys=[f"outlet-{k}" for k in range(8)])
        return {f"{batch}-{n}" for n in range(40)}

    def covers(batch: set[str]) -> Callable[[list[list[Delivery]]], bool]:
        return lambda r: batch <= {g for x in r for g in _ids(x)}

    first, second = buses.member(bus, "stage"), buses.member(bus, "stage")
    # Settle: nobody commits the backlog, so whichever member reads it first, the other is handed
    # its share again once it owns partitions. Then each commits what it holds.
    warmup = publish("warmup")
    got = alternate([first, second], lambda r: all(r) and covers(warmup)(r), commit=[False, False])
    first.commit(got[0])
    second.commit(got[1])

    # Split: every new event goes to exactly one member, and they read disjoint partitions.
    split = publish("split")
    got = alternate([first, second], covers(split))
    mine = [[d for d in r if d.event.guid in split] for r in got]
    assert sorted(_ids(mine[0]) + _ids(mine[1])) == sorted(split), "an event was delivered twice or lost"
    assert mine[0] and mine[1], "one member got nothing: partitions were not split"
    assert not {d.partition for d in mine[0]} & {d.partition for d in mine[1]}

    # Hand-over: the second member reads its share but never commits it, then leaves the group.
    handover = publish("handover")
    got = alternate([first, second], covers(handover), commit=[True, False])
    orphaned = sorted(d.event.guid for d in got[1] if d.event.guid in handover)
    assert orphaned, "the second member was handed nothing to orphan"
    second.close()
    back = drain(first, len(orphaned))
    assert sorted(_ids(back)) == orphaned  # exactly the uncommitted ones; committed ones stay done


def test_a_killed_member_s_uncommitted_deliveries_move_to_the_group(buses: Buses) -> None:
    bus = buses.open(partitions=1)
    publish_items(bus, "crash", 5)
    child = _child(buses.spec, "consume", "crashy")
    try:
        line = child.stdout.readline() if child.stdout else ""
        assert line.strip() == "ready", child.stderr.read() if child.stderr else line
    finally:
        os.kill(child.pid, signal.SIGKILL)  # no close(), no LeaveGroup: only the session timeout tells
        child.wait(timeout=30)
    survivor = buses.member(bus, "crashy")
    assert _ids(drain(survivor, 3)) == ["crash-2", "crash-3", "crash-4"]


def test_existing_topics_keep_their_partition_count(buses: Buses) -> None:
    bus = buses.open(partitions=3)
    later = buses.open(partitions=6)
    publish_items(later, "parts", 40, keys=[f"key-{k}" for k in range(40)])
    partitions = {d.partition for d in drain(buses.member(bus, "parts"), 40)}
    assert partitions <= {0, 1, 2} and len(partitions) > 1


# -- Kafka specifics ---------------------------------------------------------------------------------


def test_kafka_unreachable_broker_is_a_transient_error_naming_it() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransientError, match=f"127.0.0.1:{port}"):
        KafkaBus(f"127.0.0.1:{port}", timeout=2.0)


@pytest.mark.kafka
def test_kafka_acked_events_and_commits_survive_a_broker_crash(kafka_broker: Any) -> None:
    bus = open_bus(kafka_spec(kafka_broker.bootstrap, "crash", timeout=60.0))
    try:
        bus.ensure_topics({TOPIC: 1})
        publish_items(bus, "broker", 5)
        with bus.consumer(TOPIC, "stage") as consumer:
            consumer.commit(drain(consumer, 5)[:2])
        kafka_broker.restart(hard=True)  # SIGKILL: no clean shutdown, no final flush
        bus.publish_many(
            TOPIC, [("k", item("broker", n)) for n in range(5, 8)]
        )  # the same producer reconnects
        with bus.consumer(TOPIC, "stage") as consumer:
            assert _ids(drain(consumer, 6, timeout=60)) == [f"broker-{n}" for n in range(2, 8)]
    finally:
        bus.close()


@pytest.mark.kafka
def test_kafka_session_timeout_the_broker_refuses_is_a_config_error(kafka_broker: Any) -> None:
    bus = KafkaBus(
        kafka_broker.bootstrap,
        topic_prefix=f"cfg-{uuid.uuid4().hex[:10]}.",
        session_timeout_ms=100,
        heartbeat_interval_ms=30,
    )  # the broker's floor is 500 ms
    try:
        consumer = bus.consumer(TOPIC, "stage")
        with pytest.raises(ConfigError, match="session_timeout"):
            for _ in range(20):
                consumer.poll(max_records=1, timeout=0.5)
        consumer.close()
    finally:
        bus.close()


@pytest.mark.kafka
def test_kafka_event_over_the_size_limit_is_a_permanent_error_naming_the_topic(kafka_broker: Any) -> None:
    prefix = f"big-{uuid.uuid4().hex[:10]}."
    bus = KafkaBus(kafka_broker.bootstrap, topic_prefix=prefix, max_message_bytes=1_000_000)
    try:
        page = RawItem(
            id="big", source="s", outlet="o", url="u", canonical_url="u", title="t", html="가" * 400_000
        )
        with pytest.raises(PermanentError, match=f"{prefix}{TOPIC}"):
            bus.publish(TOPIC, "k", page)
        bus.publish(TOPIC, "k", item("big", 1))  # the bus stays usable
    finally:
        bus.close()


def test_embedded_processes_opening_a_fresh_bus_file_together_all_come_up(tmp_path: Path) -> None:
    """A daemon and its processor process open the bus file at the same moment: the one that loses the race to
    switch a fresh file to WAL is told "database is locked" at once, and must try again rather than fail."""

    def open_one(path: Path) -> None:
        bus = EmbeddedBus(path)
        bus.consumer([TOPIC], "g").close()
        bus.close()

    for round_no in range(30):  # the race is lost only some of the time: several fresh files
        race(*[functools.partial(open_one, tmp_path / f"fresh{round_no}.db")] * 8)  # an error in any fails the test
