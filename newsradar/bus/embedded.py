"""The embedded bus: a durable, partitioned log in one SQLite file (WAL).

One machine needs nothing else. Several processes may share the file: each
consumer is a group member with a heartbeat; live members split a topic's
partitions by rank, and a member that stops heartbeating loses its partitions
after ``session_timeout`` seconds — at once if it was a process on this host
that no longer exists (kill -9), so a restart picks its work up immediately. Offsets are committed per
(group, topic, partition), exactly as Kafka does, so the two buses pass one
contract suite.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from newsradar import events
from newsradar.bus.base import Bus, Consumer, Delivery
from newsradar.liveness import alive
from newsradar.sqlite_open import connect
from newsradar.sqlite_sync import without_fsync

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (name TEXT PRIMARY KEY, partitions INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    topic TEXT NOT NULL, part INTEGER NOT NULL, off INTEGER NOT NULL,
    key TEXT NOT NULL, payload BLOB NOT NULL, ts REAL NOT NULL,
    PRIMARY KEY (topic, part, off)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS offsets (
    grp TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, committed INTEGER NOT NULL,
    PRIMARY KEY (grp, topic, part));
CREATE TABLE IF NOT EXISTS members (
    grp TEXT NOT NULL, member TEXT NOT NULL, expires REAL NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    PRIMARY KEY (grp, member));
CREATE TABLE IF NOT EXISTS leases (
    grp TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, member TEXT NOT NULL, expires REAL NOT NULL,
    PRIMARY KEY (grp, topic, part));
"""


_HOST = socket.gethostname()


def _partitions(conn: sqlite3.Connection, topic: str, default: int) -> int:
    """Partition count of ``topic`` on ``conn``, creating the topic with ``default`` partitions on first use.

    Call it outside any transaction of ``conn``: on a connection another thread holds in a write transaction
    it would wait for that thread, which may be waiting for this one's lock (a deadlock until busy_timeout).
    """
    row = conn.execute("SELECT partitions FROM topics WHERE name=?", (topic,)).fetchone()
    if row:
        return int(row[0])
    conn.execute("INSERT OR IGNORE INTO topics VALUES (?, ?)", (topic, default))
    (count,) = conn.execute("SELECT partitions FROM topics WHERE name=?", (topic,)).fetchone()
    return int(count)


def partition_for(key: str, partitions: int) -> int:
    """Stable key → partition mapping (crc32), the same in every process."""
    return zlib.crc32(key.encode("utf-8")) % partitions


class EmbeddedBus(Bus):
    """SQLite-backed bus. ``default_partitions`` applies to topics not created explicitly."""

    def __init__(self, path: str | Path, default_partitions: int = 1, session_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.default_partitions = default_partitions
        self.session_timeout = session_timeout
        self._lock = threading.Lock()
        self._conn = connect(self.path, _SCHEMA)  # publish returns once the log is on disk (sqlite_open)

    def ensure_topics(self, partitions: dict[str, int]) -> None:
        with self._lock:
            for name, count in partitions.items():
                self._conn.execute("INSERT OR IGNORE INTO topics VALUES (?, ?)", (name, int(count)))

    def ping(self) -> None:
        """One trivial query on the bus database (raises sqlite3.Error when it does not answer)."""
        with self._lock:
            self._conn.execute("SELECT COUNT(*) FROM topics").fetchone()

    def partitions(self, topic: str) -> int:
        """Partition count of ``topic``, creating it with the default count on first use."""
        with self._lock:
            return _partitions(self._conn, topic, self.default_partitions)

    def publish(self, topic: str, key: str, event: Any) -> None:
        self.publish_many(topic, [(key, event)])

    def publish_many(self, topic: str, items: Any) -> None:
        encoded = [(key, events.encode(event)) for key, event in items]
        if not encoded:
            return
        with self._lock:
            count = _partitions(self._conn, topic, self.default_partitions)  # outside the transaction
            now = time.time()
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                last: dict[int, int] = {}  # the partition's last offset, read once per batch under the write lock
                rows = []
                for key, payload in encoded:
                    part = partition_for(key, count)
                    if part not in last:
                        (last[part],) = conn.execute(
                            "SELECT COALESCE(MAX(off), -1) FROM messages WHERE topic=? AND part=?", (topic, part)
                        ).fetchone()
                    last[part] += 1
                    rows.append((topic, part, last[part], key, payload, now))
                conn.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)", rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def consumer(self, topics: str | Sequence[str], group: str) -> Consumer:
        names = [topics] if isinstance(topics, str) else list(topics)
        return EmbeddedConsumer(self, names, group)

    def backlog(self, topic: str, group: str) -> int:
        """Messages in ``topic`` not yet committed by ``group`` (for health and tests)."""
        (count,) = self._conn.execute(
            """SELECT COUNT(*) FROM messages m LEFT JOIN offsets o
               ON o.grp=? AND o.topic=m.topic AND o.part=m.part
               WHERE m.topic=? AND m.off > COALESCE(o.committed, -1)""",
            (group, topic),
        ).fetchone()
        return int(count)

    def prune(self, older_than_seconds: float) -> int:
        """Delete messages older than the cut-off that every known group has committed."""
        cutoff = time.time() - older_than_seconds
        with self._lock:
            cur = self._conn.execute(
                """DELETE FROM messages WHERE ts < ? AND NOT EXISTS (
                     SELECT 1 FROM offsets o WHERE o.topic=messages.topic AND o.part=messages.part
                     AND o.committed < messages.off)""",
                (cutoff,),
            )
            return cur.rowcount

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class EmbeddedConsumer(Consumer):
    """One group member. Not thread-safe: use one consumer per thread."""

    def __init__(self, bus: EmbeddedBus, topics: list[str], group: str) -> None:
        self.bus = bus
        self.topics = topics
        self.group = group
        self.member = uuid.uuid4().hex
        self._conn = connect(bus.path)
        # Partition counts never change once a topic exists: read once, here, on this consumer's own connection
        # (never inside the rebalance transaction, never on the bus's connection that publishers share).
        self._partitions = {topic: _partitions(self._conn, topic, bus.default_partitions) for topic in topics}
        self._positions: dict[tuple[str, int], int] = {}  # next offset to fetch, per owned partition
        self._closed = False

    # -- group membership ------------------------------------------------------------------
    def _rebalance(self) -> None:
        """Heartbeat, then own exactly the partitions this member's rank gets among live members.

        Committed without waiting for the disk (newsradar.sqlite_sync): it runs before every poll, and
        membership and leases describe live processes on this host, which a power loss ends too. Offsets
        (``commit``) stay fully durable, and syncing them syncs this too (the log is written in order).
        """
        now = time.time()
        expires = now + self.bus.session_timeout
        conn = self._conn
        with without_fsync(conn):
            owned = self._lease(conn, now, expires)
        for tp in list(self._positions):
            if tp not in owned:
                del self._positions[tp]  # lost it: the next owner starts from the committed offset
        for topic, part in owned:
            if (topic, part) not in self._positions:
                row = conn.execute(
                    "SELECT committed FROM offsets WHERE grp=? AND topic=? AND part=?", (self.group, topic, part)
                ).fetchone()
                self._positions[(topic, part)] = (row[0] + 1) if row else 0

    def _lease(self, conn: sqlite3.Connection, now: float, expires: float) -> set[tuple[str, int]]:
        """Heartbeat and take this member's partitions in one transaction; returns the partitions it owns."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT OR REPLACE INTO members VALUES (?, ?, ?, ?, ?)",
                (self.group, self.member, expires, _HOST, os.getpid()),
            )
            conn.execute("DELETE FROM members WHERE grp=? AND expires < ?", (self.group, now))
            self._forget_dead_processes(conn)
            live = [r[0] for r in conn.execute("SELECT member FROM members WHERE grp=? ORDER BY member", (self.group,))]
            rank, size = live.index(self.member), len(live)
            owned: set[tuple[str, int]] = set()
            for topic in self.topics:
                for part in range(self._partitions[topic]):
                    if part % size != rank:
                        conn.execute(
                            "DELETE FROM leases WHERE grp=? AND topic=? AND part=? AND member=?",
                            (self.group, topic, part, self.member),
                        )
                        continue
                    row = conn.execute(
                        "SELECT member, expires FROM leases WHERE grp=? AND topic=? AND part=?",
                        (self.group, topic, part),
                    ).fetchone()
                    if row is None or row[0] == self.member or row[1] < now:
                        conn.execute(
                            "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?)",
                            (self.group, topic, part, self.member, expires),
                        )
                        owned.add((topic, part))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return owned

    def _forget_dead_processes(self, conn: sqlite3.Connection) -> None:
        """Members that were processes on this host which no longer exist lose membership and leases now."""
        rows = conn.execute("SELECT member, pid FROM members WHERE grp=? AND host=?", (self.group, _HOST)).fetchall()
        for member, pid in rows:
            if member != self.member and not alive(pid):
                conn.execute("DELETE FROM members WHERE grp=? AND member=?", (self.group, member))
                conn.execute("DELETE FROM leases WHERE grp=? AND member=?", (self.group, member))

    def poll(self, max_records: int = 100, timeout: float = 1.0) -> list[Delivery]:
        if self._closed:
            raise RuntimeError("consumer is closed")
        deadline = time.monotonic() + timeout
        while True:
            self._rebalance()
            batch = self._fetch(max_records)
            if batch or time.monotonic() >= deadline:
                return batch
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def _fetch(self, max_records: int) -> list[Delivery]:
        batch: list[Delivery] = []
        for (topic, part), position in sorted(self._positions.items()):
            room = max_records - len(batch)
            if room <= 0:
                break
            rows = self._conn.execute(
                "SELECT off, key, payload FROM messages WHERE topic=? AND part=? AND off>=? ORDER BY off LIMIT ?",
                (topic, part, position, room),
            ).fetchall()
            for off, key, payload in rows:
                batch.append(Delivery(topic, part, off, key, bytes(payload)))
            if rows:
                self._positions[(topic, part)] = rows[-1][0] + 1
        return batch

    def commit(self, deliveries: Sequence[Delivery]) -> None:
        highest: dict[tuple[str, int], int] = {}
        for d in deliveries:
            tp = (d.topic, d.partition)
            if tp not in self._positions:
                continue  # handed over since: the new owner redelivers it; committing could skip its work
            highest[tp] = max(highest.get(tp, -1), d.offset)
        if not highest:
            return
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for (topic, part), off in highest.items():
                conn.execute(
                    """INSERT INTO offsets VALUES (?, ?, ?, ?)
                       ON CONFLICT(grp, topic, part) DO UPDATE SET committed=MAX(committed, excluded.committed)""",
                    (self.group, topic, part, off),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._conn.execute("DELETE FROM leases WHERE grp=? AND member=?", (self.group, self.member))
        self._conn.execute("DELETE FROM members WHERE grp=? AND member=?", (self.group, self.member))
        self._conn.close()
