"""The state store in one SQLite file (WAL): the embedded default, and roles sharing one host.

Several processes may share the file. Every write is a transaction with synchronous=FULL, so a
stage can acknowledge a bus delivery as soon as the write returns; the grouping stage writes a
whole batch in one (``commit_grouping``).
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

from newsradar import events
from newsradar.errors import StateError, TransientError
from newsradar.events import Story
from newsradar.store.base import GroupingDecision, GroupingRow, StateStore, StoryWrite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS validators (
    source TEXT NOT NULL, url TEXT NOT NULL, etag TEXT, last_modified TEXT, PRIMARY KEY (source, url));
CREATE TABLE IF NOT EXISTS seen (
    source TEXT NOT NULL, item_id TEXT NOT NULL, seen_at REAL NOT NULL, PRIMARY KEY (source, item_id));
CREATE INDEX IF NOT EXISTS seen_by_time ON seen (seen_at);
CREATE TABLE IF NOT EXISTS stories (
    id TEXT PRIMARY KEY, payload TEXT NOT NULL, first_seen REAL NOT NULL,
    relevant_at REAL, updated_at REAL NOT NULL, copies INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS stories_by_relevance ON stories (relevant_at);
CREATE TABLE IF NOT EXISTS story_articles (
    story_id TEXT NOT NULL, article_id TEXT NOT NULL, PRIMARY KEY (story_id, article_id));
CREATE TABLE IF NOT EXISTS alerts (
    story_id TEXT NOT NULL, channel TEXT NOT NULL, ref TEXT, outlets INTEGER NOT NULL,
    state TEXT NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (story_id, channel));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS digests (
    day TEXT NOT NULL, recipient TEXT NOT NULL, state TEXT NOT NULL, sent_at REAL,
    cutoff REAL NOT NULL, PRIMARY KEY (day, recipient));
CREATE TABLE IF NOT EXISTS grouped (
    seq INTEGER PRIMARY KEY, article_id TEXT NOT NULL UNIQUE, story_id TEXT NOT NULL,
    t REAL NOT NULL, signature BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS grouped_by_time ON grouped (t);
CREATE INDEX IF NOT EXISTS grouped_by_story ON grouped (story_id);
CREATE TABLE IF NOT EXISTS merged (
    absorbed TEXT PRIMARY KEY, survivor TEXT NOT NULL, article_id TEXT NOT NULL, t REAL NOT NULL);
CREATE INDEX IF NOT EXISTS merged_by_article ON merged (article_id);
CREATE INDEX IF NOT EXISTS merged_by_survivor ON merged (survivor);
CREATE TABLE IF NOT EXISTS roundups (story_id TEXT PRIMARY KEY, t REAL NOT NULL);
"""


def _upsert_story(conn: sqlite3.Connection, story: Story, now: datetime) -> None:
    """Write a story record; the time it first became relevant (it matched a term) is kept."""
    relevant_at = _ts(now) if story.terms else None
    conn.execute(
        """INSERT INTO stories VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT(id) DO UPDATE SET payload=excluded.payload, updated_at=excluded.updated_at,
           copies=excluded.copies, relevant_at=COALESCE(stories.relevant_at, excluded.relevant_at)""",
        (story.id, events.encode(story).decode("utf-8"), _ts(story.first_seen), relevant_at, _ts(now), story.copies),
    )


def _apply(conn: sqlite3.Connection, write: StoryWrite, now: datetime) -> None:
    """One StoryWrite (see its docstring) inside the caller's transaction."""
    story = write.story
    absorbed_relevant = None
    if write.absorbed_id:
        row = conn.execute("SELECT relevant_at FROM stories WHERE id=?", (write.absorbed_id,)).fetchone()
        absorbed_relevant = row[0] if row else None
    _upsert_story(conn, story, now)
    if write.article_id:
        conn.execute("INSERT OR IGNORE INTO story_articles VALUES (?, ?)", (story.id, write.article_id))
    if not write.absorbed_id:
        return
    if absorbed_relevant is not None:
        conn.execute(
            "UPDATE stories SET relevant_at=MIN(COALESCE(relevant_at, ?), ?) WHERE id=?",
            (absorbed_relevant, absorbed_relevant, story.id),
        )
    conn.execute(
        "INSERT OR IGNORE INTO story_articles SELECT ?, article_id FROM story_articles WHERE story_id=?",
        (story.id, write.absorbed_id),
    )
    conn.execute("DELETE FROM story_articles WHERE story_id=?", (write.absorbed_id,))
    conn.execute("DELETE FROM stories WHERE id=?", (write.absorbed_id,))
    conn.execute("UPDATE OR IGNORE alerts SET story_id=? WHERE story_id=?", (story.id, write.absorbed_id))


def _record_decision(conn: sqlite3.Connection, d: GroupingDecision) -> None:
    """One GroupingDecision inside the caller's transaction (a decision already there is kept)."""
    conn.execute("INSERT OR IGNORE INTO grouped (article_id, story_id, t, signature) VALUES (?, ?, ?, ?)",
                 (d.article_id, d.story_id, d.t, d.signature))  # fmt: skip
    if d.roundup:
        conn.execute("INSERT OR IGNORE INTO roundups VALUES (?, ?)", (d.story_id, d.t))
    for other in d.absorbed:
        conn.execute("UPDATE grouped SET story_id=? WHERE story_id=?", (d.story_id, other))
        conn.execute("UPDATE merged SET survivor=? WHERE survivor=?", (d.story_id, other))
        conn.execute("INSERT OR REPLACE INTO merged VALUES (?, ?, ?, ?)", (other, d.story_id, d.article_id, d.t))


def _open(path: Path, patience: float = 30.0) -> sqlite3.Connection:
    """A connection with WAL, synchronous=FULL and the schema in place.

    Processes starting together on a fresh file race to switch it to WAL and create the tables; SQLite
    answers the loser "database is locked" at once, without waiting (the lock is being upgraded): try
    again for up to ``patience`` seconds before calling it a failure.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"state store {path}: cannot open: {exc}") from exc
        try:
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA + _SCHEMA_18)
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise StateError(f"state store {path}: cannot open: {exc}") from exc
            time.sleep(random.uniform(0.01, 0.1))
        except sqlite3.Error as exc:
            conn.close()
            raise StateError(f"state store {path}: cannot open: {exc}") from exc


def _ts(value: datetime) -> float:
    return value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=timezone.utc)


class SqliteStore(StateStore):
    """Durable pipeline state in a SQLite file. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self._conn = _open(self.path)
        self._lock = threading.Lock()

    def _write(self, sql: str, params: tuple[object, ...]) -> int:
        """Run one write in its own transaction; a failing disk is a loud StateError, never silent."""
        with self._lock:
            try:
                return self._conn.execute(sql, params).rowcount
            except sqlite3.Error as exc:
                raise StateError(f"state store {self.path}: write failed: {exc}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Several writes as one (BEGIN IMMEDIATE … COMMIT); a failure rolls back and is a StateError."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if "locked" in str(exc) or "busy" in str(exc):
                    raise TransientError(f"state store {self.path}: busy: {exc}") from exc
                raise StateError(f"state store {self.path}: write failed: {exc}") from exc

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- collectors: HTTP validators and seen ids ---------------------------------------------
    def validators(self, source: str, url: str) -> tuple[str | None, str | None]:
        """(ETag, Last-Modified) last seen for this URL, for a conditional GET."""
        rows = self._read("SELECT etag, last_modified FROM validators WHERE source=? AND url=?", (source, url))
        return (rows[0][0], rows[0][1]) if rows else (None, None)

    def set_validators(self, source: str, url: str, etag: str | None, last_modified: str | None) -> None:
        self._write(
            "INSERT OR REPLACE INTO validators VALUES (?, ?, ?, ?)", (source, url, etag, last_modified)
        )

    def is_seen(self, source: str, item_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM seen WHERE source=? AND item_id=?", (source, item_id)))

    def mark_seen(self, source: str, item_ids: list[str], when: datetime) -> None:
        """Remember these ids; called only after the items are durably on the bus."""
        with self._transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO seen VALUES (?, ?, ?)", [(source, i, _ts(when)) for i in item_ids])

    def prune_seen(self, older_than: timedelta, now: datetime) -> int:
        """Forget seen ids older than the retention (by time, not by count)."""
        return self._write("DELETE FROM seen WHERE seen_at < ?", (_ts(now - older_than),))

    # -- grouping stage: story records ----------------------------------------------------------
    def story(self, story_id: str) -> Story | None:
        rows = self._read("SELECT payload FROM stories WHERE id=?", (story_id,))
        return events.decode(rows[0][0]) if rows else None

    def story_has_article(self, story_id: str, article_id: str) -> bool:
        return bool(
            self._read("SELECT 1 FROM story_articles WHERE story_id=? AND article_id=?", (story_id, article_id))
        )

    def write_stories(self, writes: Sequence[StoryWrite], now: datetime) -> None:
        with self._transaction() as conn:
            for write in writes:
                _apply(conn, write, now)

    def claim_grouping(self, writer: str) -> bool:
        rows = self._read("SELECT value FROM meta WHERE key='grouper'")
        if rows and rows[0][0] == writer:
            return False
        self._write("INSERT OR REPLACE INTO meta VALUES ('grouper', ?)", (writer,))
        return bool(rows)

    def commit_grouping(self, writer: str, decisions: Sequence[GroupingDecision], writes: Sequence[StoryWrite],
                        now: datetime) -> bool:  # fmt: skip
        with self._transaction() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key='grouper'").fetchone()
            if row is not None and row[0] != writer:
                return False
            for decision in decisions:
                _record_decision(conn, decision)
            for write in writes:
                _apply(conn, write, now)
        return True

    def grouping_rows(self) -> Iterator[GroupingRow]:
        with self._lock:
            rows = self._conn.execute("SELECT article_id, story_id, signature FROM grouped ORDER BY seq").fetchall()
        for article_id, story_id, blob in rows:
            if blob:
                yield GroupingRow(str(article_id), str(story_id), bytes(blob))

    def grouping_story_of(self, article_id: str) -> str | None:
        rows = self._read("SELECT story_id FROM grouped WHERE article_id=?", (article_id,))
        return str(rows[0][0]) if rows else None

    def grouping_merged_by(self, article_id: str) -> tuple[str, ...]:
        rows = self._read("SELECT absorbed FROM merged WHERE article_id=? ORDER BY absorbed", (article_id,))
        return tuple(str(r[0]) for r in rows)

    def grouping_survivors(self) -> dict[str, str]:
        return {str(a): str(b) for a, b in self._read("SELECT absorbed, survivor FROM merged")}

    def grouping_roundups(self) -> set[str]:
        return {str(r[0]) for r in self._read("SELECT story_id FROM roundups")}

    def grouping_evict(self, horizon: float) -> int:
        with self._transaction() as conn:
            conn.execute("DELETE FROM merged WHERE t < ?", (horizon,))
            conn.execute("DELETE FROM roundups WHERE t < ?", (horizon,))
            return int(conn.execute("DELETE FROM grouped WHERE t < ?", (horizon,)).rowcount)

    def grouping_signature_version(self, version: str) -> bool:
        with self._transaction() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key='signature_version'").fetchone()
            if row is not None and row[0] == version:
                return False
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('signature_version', ?)", (version,))
            if row is None:
                return False
            conn.execute("UPDATE grouped SET signature = x''")
            return True

    def relevant_stories(self, after: datetime | None, until: datetime) -> list[Story]:
        """Stories that became relevant in (after, until], for the digest."""
        low = _ts(after) if after else 0.0
        rows = self._read(
            "SELECT payload FROM stories WHERE relevant_at > ? AND relevant_at <= ? ORDER BY relevant_at",
            (low, _ts(until)),
        )
        return [events.decode(r[0]) for r in rows]

    def prune_stories(self, older_than: timedelta, now: datetime) -> int:
        cutoff = _ts(now - older_than)
        self._write(
            "DELETE FROM story_articles WHERE story_id IN (SELECT id FROM stories WHERE updated_at < ?)", (cutoff,)
        )
        return self._write("DELETE FROM stories WHERE updated_at < ?", (cutoff,))

    # -- notifiers: alert and digest idempotency keys ----------------------------------------------
    def alert(self, story_id: str, channel: str) -> tuple[str, str | None, int] | None:
        """(state, ref, outlets shown) of the alert for (story, channel), or None if never attempted."""
        rows = self._read("SELECT state, ref, outlets FROM alerts WHERE story_id=? AND channel=?", (story_id, channel))
        return (rows[0][0], rows[0][1], int(rows[0][2])) if rows else None

    def record_alert(self, story_id: str, channel: str, state: str, ref: str | None, outlets: int) -> None:
        """state: 'pending' before the send (outbox), 'sent' once delivered.

        ref: "<channel id>/<ts>" for Slack bot messages, "webhook" for webhooks, a file path for the console.
        """
        self._write(
            "INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?, strftime('%s','now'))",
            (story_id, channel, ref, outlets, state),
        )

    def digest_state(self, day: str, recipient: str) -> str | None:
        rows = self._read("SELECT state FROM digests WHERE day=? AND recipient=?", (day, recipient))
        return rows[0][0] if rows else None

    def record_digest(self, day: str, recipient: str, state: str, cutoff: datetime, sent_at: datetime | None) -> None:
        """state: 'pending' before SMTP, 'sent' after the server accepted the message."""
        self._write(
            "INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?)",
            (day, recipient, state, _ts(sent_at) if sent_at else None, _ts(cutoff)),
        )

    def last_digest_cutoff(self, recipient: str) -> datetime | None:
        """The cut-off of the last digest actually sent to ``recipient`` (stories after it are due)."""
        rows = self._read(
            "SELECT MAX(cutoff) FROM digests WHERE recipient=? AND state='sent'", (recipient,)
        )
        return _dt(rows[0][0]) if rows and rows[0][0] is not None else None

    def stats(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for table in ("seen", "stories", "alerts", "digests", "grouped"):
            out[table] = int(self._read(f"SELECT COUNT(*) FROM {table}")[0][0])  # noqa: S608 - fixed names
        out["relevant_stories"] = int(self._read("SELECT COUNT(*) FROM stories WHERE relevant_at IS NOT NULL")[0][0])
        return out

    # == issue 18: quiet hours (held alerts, roll-ups), digest claims and parts, first polls, trend ============
    # Semantics in base.StateStore. Each method is one transaction; BEGIN IMMEDIATE takes the write lock
    # first, so a claim's read and its conditional write cannot interleave with another process's.
    def hold_alert(self, story_id: str, channel: str, outlets: int, now: datetime) -> bool:
        return self._write("INSERT OR IGNORE INTO alerts VALUES (?, ?, NULL, ?, 'held', ?)",
                           (story_id, channel, outlets, _ts(now))) == 1  # fmt: skip

    def held_alerts(self, channel: str | None = None) -> list[tuple[str, str, datetime]]:
        sql = "SELECT story_id, channel, updated_at FROM alerts WHERE state='held'"
        rows = self._read(sql + (" AND channel=?" if channel else "") + " ORDER BY updated_at, story_id",
                          (channel,) if channel else ())
        return [(r[0], r[1], _dt(r[2]) or datetime.now(timezone.utc)) for r in rows]

    def drop_alert(self, story_id: str, channel: str) -> None:
        self._write("DELETE FROM alerts WHERE story_id=? AND channel=? AND state='held'", (story_id, channel))

    def claim_held(self, channel: str, story_ids: Sequence[str], ref: str, now: datetime) -> list[str]:
        with self._transaction() as conn:
            return _claim_held(conn, channel, story_ids, ref, now)

    def take_over_releases(self, ref: str, stale_before: datetime, now: datetime) -> list[tuple[str, str]]:
        with self._transaction() as conn:
            rows = conn.execute(
                "UPDATE alerts SET updated_at=? WHERE state='pending' AND ref=? AND updated_at < ? "
                "RETURNING story_id, channel", (_ts(now), ref, _ts(stale_before))).fetchall()
        return sorted((str(r[0]), str(r[1])) for r in rows)

    def begin_rollup(self, rollup_id: str, channel: str, story_ids: Sequence[str], now: datetime) -> list[str]:
        with self._transaction() as conn:
            claimed = _claim_held(conn, channel, story_ids, f"rollup:{rollup_id}", now)
            if claimed:
                conn.execute("INSERT INTO rollups VALUES (?, ?, ?, 'pending', NULL, ?)",
                             (rollup_id, channel, json.dumps(claimed), _ts(now)))  # fmt: skip
        return claimed

    def take_over_rollups(self, stale_before: datetime, now: datetime) -> list[tuple[str, str, list[str]]]:
        with self._transaction() as conn:
            rows = conn.execute(
                "UPDATE rollups SET created_at=? WHERE state='pending' AND created_at < ? "
                "RETURNING id, channel, story_ids", (_ts(now), _ts(stale_before))).fetchall()
        return sorted((str(r[0]), str(r[1]), list(json.loads(r[2]))) for r in rows)

    def pending_rollups(self) -> list[tuple[str, str, list[str]]]:
        rows = self._read("SELECT id, channel, story_ids FROM rollups WHERE state='pending' ORDER BY created_at, id")
        return [(r[0], r[1], list(json.loads(r[2]))) for r in rows]

    def finish_rollup(self, rollup_id: str, ref: str, outlets: dict[str, int]) -> None:
        with self._transaction() as conn:
            row = conn.execute("SELECT channel FROM rollups WHERE id=?", (rollup_id,)).fetchone()
            if row is None:
                return
            conn.execute("UPDATE rollups SET state='sent', ref=? WHERE id=?", (ref, rollup_id))
            conn.executemany(
                "UPDATE alerts SET state='sent', ref=?, outlets=?, updated_at=strftime('%s','now') "
                "WHERE story_id=? AND channel=?", [(ref, n, sid, row[0]) for sid, n in outlets.items()])

    def rollup_stories(self, ref: str) -> list[str] | None:
        rows = self._read("SELECT story_ids FROM rollups WHERE ref=? AND state='sent'", (ref,))
        return list(json.loads(rows[0][0])) if rows else None

    def claim_digest(self, day: str, recipient: str, owner: str, cutoff: datetime, now: datetime,
                     stale_before: datetime) -> datetime | None:  # fmt: skip
        with self._transaction() as conn:
            sent = conn.execute("SELECT 1 FROM digests WHERE day=? AND recipient=? AND state='sent'",
                                (day, recipient)).fetchone()  # fmt: skip
            if sent:
                return None
            if conn.execute("INSERT OR IGNORE INTO digest_claims VALUES (?, ?, ?, ?, ?)",
                            (day, recipient, owner, _ts(now), _ts(cutoff))).rowcount == 1:  # fmt: skip
                return cutoff
            row = conn.execute(
                "UPDATE digest_claims SET owner=?, claimed_at=? WHERE day=? AND recipient=? "
                "AND (owner=? OR claimed_at < ?) RETURNING cutoff",
                (owner, _ts(now), day, recipient, owner, _ts(stale_before))).fetchone()
        return _dt(row[0]) if row else None

    def release_digest(self, day: str, recipient: str, owner: str) -> None:
        self._write("DELETE FROM digest_claims WHERE day=? AND recipient=? AND owner=?", (day, recipient, owner))

    def digest_part(self, day: str, recipient: str, part: str) -> tuple[str, str | None] | None:
        rows = self._read("SELECT state, ref FROM digest_parts WHERE day=? AND recipient=? AND part=?",
                          (day, recipient, part))
        return (rows[0][0], rows[0][1]) if rows else None

    def record_digest_part(self, day: str, recipient: str, part: str, state: str, ref: str | None) -> None:
        self._write("INSERT OR REPLACE INTO digest_parts VALUES (?, ?, ?, ?, ?)", (day, recipient, part, state, ref))

    def first_poll(self, source: str) -> datetime | None:
        rows = self._read("SELECT first_polled_at FROM source_polls WHERE source=?", (source,))
        return _dt(rows[0][0]) if rows else None

    def record_first_poll(self, source: str, started: datetime) -> None:
        self._write("INSERT OR IGNORE INTO source_polls VALUES (?, ?)", (source, _ts(started)))

    def stories_touched_since(self, after: datetime) -> list[Story]:
        rows = self._read("SELECT payload FROM stories WHERE relevant_at IS NOT NULL AND updated_at >= ?",
                          (_ts(after),))
        return [events.decode(r[0]) for r in rows]


def _claim_held(conn: sqlite3.Connection, channel: str, story_ids: Sequence[str], ref: str,
                now: datetime) -> list[str]:  # fmt: skip
    """The conditional UPDATE of claim_held, inside the caller's transaction; the ids it changed, in order."""
    claimed = []
    for story_id in dict.fromkeys(story_ids):
        changed = conn.execute("UPDATE alerts SET state='pending', ref=?, updated_at=? "
                               "WHERE story_id=? AND channel=? AND state='held'",
                               (ref, _ts(now), story_id, channel)).rowcount  # fmt: skip
        if changed:
            claimed.append(story_id)
    return claimed


# issue 18: tables of the block above (created with the others when a store opens).
_SCHEMA_18 = """
CREATE TABLE IF NOT EXISTS rollups (
    id TEXT PRIMARY KEY, channel TEXT NOT NULL, story_ids TEXT NOT NULL, state TEXT NOT NULL, ref TEXT,
    created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS rollups_by_ref ON rollups (ref);
CREATE TABLE IF NOT EXISTS digest_claims (
    day TEXT NOT NULL, recipient TEXT NOT NULL, owner TEXT NOT NULL, claimed_at REAL NOT NULL,
    cutoff REAL NOT NULL, PRIMARY KEY (day, recipient));
CREATE TABLE IF NOT EXISTS digest_parts (
    day TEXT NOT NULL, recipient TEXT NOT NULL, part TEXT NOT NULL, state TEXT NOT NULL, ref TEXT,
    PRIMARY KEY (day, recipient, part));
CREATE TABLE IF NOT EXISTS source_polls (source TEXT PRIMARY KEY, first_polled_at REAL NOT NULL);
"""
