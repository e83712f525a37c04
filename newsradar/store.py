"""The state store: everything that must survive a restart, in one SQLite file (WAL).

Holds HTTP validators and seen item ids per source (collectors), story records
(grouping stage), and the idempotency keys of every alert and digest
(notifiers). Several processes may share the file. Every write is its own
transaction with synchronous=FULL, so a stage can acknowledge a bus delivery as
soon as the write returns.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

from newsradar import events
from newsradar.errors import StateError
from newsradar.events import Story

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


def _ts(value: datetime) -> float:
    return value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=timezone.utc)


class Store:
    """Durable pipeline state. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._conn.executescript(_SCHEMA + _SCHEMA_18)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"state store {self.path}: cannot open: {exc}") from exc
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

    def save_story(self, story: Story, article_id: str, now: datetime) -> None:
        """Store the story and the membership of ``article_id`` in one transaction."""
        with self._transaction() as conn:
            _upsert_story(conn, story, now)
            conn.execute("INSERT OR IGNORE INTO story_articles VALUES (?, ?)", (story.id, article_id))

    def absorb_story(self, survivor: Story, absorbed_id: str, now: datetime) -> None:
        """Fold story ``absorbed_id`` into ``survivor`` (already merged by the caller), in one transaction.

        The absorbed story's articles become the survivor's and its record goes. Its alerts are
        handed over on every channel where the survivor has none yet, so the message already posted
        is edited from now on instead of a second one being posted; where both have an alert, the
        absorbed one is left as it was. The survivor counts as relevant from the earlier of the two.
        """
        with self._transaction() as conn:
            row = conn.execute("SELECT relevant_at FROM stories WHERE id=?", (absorbed_id,)).fetchone()
            absorbed_relevant = row[0] if row else None
            _upsert_story(conn, survivor, now)
            if absorbed_relevant is not None:
                conn.execute(
                    "UPDATE stories SET relevant_at=MIN(COALESCE(relevant_at, ?), ?) WHERE id=?",
                    (absorbed_relevant, absorbed_relevant, survivor.id),
                )
            conn.execute(
                "INSERT OR IGNORE INTO story_articles SELECT ?, article_id FROM story_articles WHERE story_id=?",
                (survivor.id, absorbed_id),
            )
            conn.execute("DELETE FROM story_articles WHERE story_id=?", (absorbed_id,))
            conn.execute("DELETE FROM stories WHERE id=?", (absorbed_id,))
            conn.execute("UPDATE OR IGNORE alerts SET story_id=? WHERE story_id=?", (survivor.id, absorbed_id))

    def claim_grouping(self, writer: str) -> bool:
        """Record ``writer`` as the grouper writing story state; True if another writer had taken over.

        A stand-by grouper that takes the articles partition over uses this to know that its in-memory
        story index is stale and must be reloaded from disk before it assigns anything. Reads only,
        unless the writer changes.
        """
        rows = self._read("SELECT value FROM meta WHERE key='grouper'")
        if rows and rows[0][0] == writer:
            return False
        self._write("INSERT OR REPLACE INTO meta VALUES ('grouper', ?)", (writer,))
        return bool(rows)

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
        for table in ("seen", "stories", "alerts", "digests"):
            out[table] = int(self._read(f"SELECT COUNT(*) FROM {table}")[0][0])  # noqa: S608 - fixed names
        out["relevant_stories"] = int(self._read("SELECT COUNT(*) FROM stories WHERE relevant_at IS NOT NULL")[0][0])
        return out

    # == issue 18: quiet hours (held alerts, roll-ups), Slack digest parts, first polls, trend data ===================
    # Held alerts live in the ``alerts`` table with state 'held' (so absorb_story hands them over like any alert);
    # the tables below are new. Every method is one transaction.
    # -- quiet hours: held alerts and roll-ups --------------------------------------------------
    def hold_alert(self, story_id: str, channel: str, outlets: int, now: datetime) -> None:
        """Called when an alert falls in a channel's quiet hours: (story, channel) becomes 'held' (outbox),
        ``updated_at`` = the time it was held. Nothing is sent; a later release posts it."""
        self._write("INSERT OR REPLACE INTO alerts VALUES (?, ?, NULL, ?, 'held', ?)",
                    (story_id, channel, outlets, _ts(now)))

    def held_alerts(self, channel: str | None = None) -> list[tuple[str, str, datetime]]:
        """(story id, channel, held at) of every held alert (of one channel), oldest first. Reads only."""
        sql = "SELECT story_id, channel, updated_at FROM alerts WHERE state='held'"
        rows = self._read(sql + (" AND channel=?" if channel else "") + " ORDER BY updated_at, story_id",
                          (channel,) if channel else ())
        return [(r[0], r[1], _dt(r[2]) or datetime.now(timezone.utc)) for r in rows]

    def releasing_alerts(self) -> list[tuple[str, str]]:
        """(story id, channel) of alerts a quiet-hours release was posting one by one when it stopped
        (state 'pending', ref 'release'): the release finishes them. Reads only."""
        rows = self._read("SELECT story_id, channel FROM alerts WHERE state='pending' AND ref='release'")
        return [(r[0], r[1]) for r in rows]

    def drop_alert(self, story_id: str, channel: str) -> None:
        """Forget a held alert whose story no longer exists (pruned, or absorbed where the survivor had one)."""
        self._write("DELETE FROM alerts WHERE story_id=? AND channel=? AND state='held'", (story_id, channel))

    def begin_rollup(self, rollup_id: str, channel: str, story_ids: list[str], now: datetime) -> None:
        """Before a roll-up is posted: the roll-up is recorded 'pending' with its stories, and their held
        alerts become 'pending' with ref 'rollup:<id>' (one transaction), so a crash before the post is
        finished releases exactly this roll-up again (after looking for it in the channel's history)."""
        with self._transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO rollups VALUES (?, ?, ?, 'pending', NULL, ?)",
                         (rollup_id, channel, json.dumps(story_ids), _ts(now)))
            conn.executemany(
                "UPDATE alerts SET state='pending', ref=?, updated_at=? WHERE story_id=? AND channel=?",
                [(f"rollup:{rollup_id}", _ts(now), sid, channel) for sid in story_ids])

    def finish_rollup(self, rollup_id: str, ref: str, outlets: dict[str, int]) -> None:
        """After Slack accepted the roll-up: it is 'sent' with ``ref`` ("<channel id>/<ts>") and each of its
        stories' alerts is 'sent' with that ref and the outlets shown (one transaction)."""
        with self._transaction() as conn:
            row = conn.execute("SELECT channel FROM rollups WHERE id=?", (rollup_id,)).fetchone()
            if row is None:
                return
            conn.execute("UPDATE rollups SET state='sent', ref=? WHERE id=?", (ref, rollup_id))
            conn.executemany(
                "UPDATE alerts SET state='sent', ref=?, outlets=?, updated_at=strftime('%s','now') "
                "WHERE story_id=? AND channel=?",
                [(ref, n, sid, row[0]) for sid, n in outlets.items()])

    def pending_rollups(self) -> list[tuple[str, str, list[str]]]:
        """(id, channel, story ids) of roll-ups begun but not recorded as sent. Reads only."""
        rows = self._read("SELECT id, channel, story_ids FROM rollups WHERE state='pending' ORDER BY created_at")
        return [(r[0], r[1], list(json.loads(r[2]))) for r in rows]

    def rollup_stories(self, ref: str) -> list[str] | None:
        """The story ids of the sent roll-up whose message is ``ref``, or None when ``ref`` is no roll-up."""
        rows = self._read("SELECT story_ids FROM rollups WHERE ref=? AND state='sent'", (ref,))
        return list(json.loads(rows[0][0])) if rows else None

    # -- Slack digest: parts, resumable ------------------------------------------------------------
    def digest_record(self, day: str, recipient: str) -> tuple[str, datetime] | None:
        """(state, cut-off) of the digest for (day, recipient), or None. Reads only."""
        rows = self._read("SELECT state, cutoff FROM digests WHERE day=? AND recipient=?", (day, recipient))
        return (rows[0][0], _dt(rows[0][1]) or datetime.now(timezone.utc)) if rows else None

    def digest_part(self, day: str, recipient: str, part: str) -> tuple[str, str | None] | None:
        """(state, ref) of one part of a split digest (a numbered message or the chart), or None."""
        rows = self._read("SELECT state, ref FROM digest_parts WHERE day=? AND recipient=? AND part=?",
                          (day, recipient, part))
        return (rows[0][0], rows[0][1]) if rows else None

    def record_digest_part(self, day: str, recipient: str, part: str, state: str, ref: str | None) -> None:
        """state: 'pending' just before the part is posted, 'sent' (with its ref) once Slack accepted it."""
        self._write("INSERT OR REPLACE INTO digest_parts VALUES (?, ?, ?, ?, ?)", (day, recipient, part, state, ref))

    # -- collectors: a source's first poll ----------------------------------------------------------
    def first_poll(self, source: str) -> datetime | None:
        """When the first successful poll of ``source`` started (its items' fetched_at), or None."""
        rows = self._read("SELECT first_polled_at FROM source_polls WHERE source=?", (source,))
        return _dt(rows[0][0]) if rows else None

    def record_first_poll(self, source: str, started: datetime) -> None:
        """After a source's first poll is on the bus; later calls change nothing (INSERT OR IGNORE)."""
        self._write("INSERT OR IGNORE INTO source_polls VALUES (?, ?)", (source, _ts(started)))

    # -- digest chart: recent relevant stories --------------------------------------------------------
    def stories_touched_since(self, after: datetime) -> list[Story]:
        """Relevant stories updated after ``after`` (a superset of those first published since). Reads only."""
        rows = self._read("SELECT payload FROM stories WHERE relevant_at IS NOT NULL AND updated_at >= ?",
                          (_ts(after),))
        return [events.decode(r[0]) for r in rows]


# issue 18: tables of the block above (created with the others when a Store opens).
_SCHEMA_18 = """
CREATE TABLE IF NOT EXISTS rollups (
    id TEXT PRIMARY KEY, channel TEXT NOT NULL, story_ids TEXT NOT NULL, state TEXT NOT NULL, ref TEXT,
    created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS rollups_by_ref ON rollups (ref);
CREATE TABLE IF NOT EXISTS digest_parts (
    day TEXT NOT NULL, recipient TEXT NOT NULL, part TEXT NOT NULL, state TEXT NOT NULL, ref TEXT,
    PRIMARY KEY (day, recipient, part));
CREATE TABLE IF NOT EXISTS source_polls (source TEXT PRIMARY KEY, first_polled_at REAL NOT NULL);
"""
