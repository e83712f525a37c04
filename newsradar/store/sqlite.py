"""The state store in one SQLite file (WAL): the embedded default, and roles sharing one host.

Several processes may share the file. Every write is a transaction with synchronous=FULL, so a
stage can acknowledge a bus delivery as soon as the write returns; the grouping stage writes a
whole batch in one (``commit_grouping``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta, timezone
from pathlib import Path

from newsradar import events
from newsradar.errors import StateError, TransientError
from newsradar.events import Article, Story
from newsradar.sqlite_open import connect
from newsradar.sqlite_sync import without_fsync
from newsradar.store.base import (
    AlertRecord,
    GroupingDecision,
    GroupingRow,
    PollState,
    SourceAlert,
    SourcePoll,
    SourceStatus,
    StateStore,
    StoryCopy,
    StoryWrite,
    claim_each,
    in_runs,
    latest,
)

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
CREATE TABLE IF NOT EXISTS leases (key TEXT PRIMARY KEY, owner TEXT NOT NULL, until REAL NOT NULL);
-- issue 19: API quotas and URL claims
CREATE TABLE IF NOT EXISTS quotas (key TEXT NOT NULL, day TEXT NOT NULL, used INTEGER NOT NULL, PRIMARY KEY (key, day));
CREATE TABLE IF NOT EXISTS url_claims (url TEXT PRIMARY KEY, item_id TEXT NOT NULL, claimed_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS url_claims_by_time ON url_claims (claimed_at);
CREATE TABLE IF NOT EXISTS poll_state (
    source TEXT PRIMARY KEY, poll_interval REAL NOT NULL, rate REAL,
    failures INTEGER NOT NULL, last_poll_at REAL);
"""


_IN_CHUNK = 500  # ids asked in one IN (...) list: far below SQLite's limit on bound parameters


def _upsert_story(conn: sqlite3.Connection, story: Story, now: datetime) -> None:
    """Write a story record; the time it first became relevant (it matched a term) is kept."""
    relevant_at = _ts(now) if story.terms else None
    conn.execute(
        """INSERT INTO stories VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT(id) DO UPDATE SET payload=excluded.payload, updated_at=excluded.updated_at,
           copies=excluded.copies, relevant_at=COALESCE(stories.relevant_at, excluded.relevant_at)""",
        (story.id, events.encode(story).decode("utf-8"), _ts(story.first_seen), relevant_at, _ts(now), story.copies),
    )


def _apply_many(conn: sqlite3.Connection, writes: Sequence[StoryWrite], now: datetime) -> None:
    """Story writes that fold nothing: each story's last state once (base.latest), then each write's copy and
    membership."""
    for story in latest(writes):
        _upsert_story(conn, story, now)
    for write in writes:
        if write.copy is not None:
            _record_copy(conn, write.copy, now)
        if write.article_id:
            conn.execute("INSERT OR IGNORE INTO story_articles VALUES (?, ?)", (write.story.id, write.article_id))


def _apply(conn: sqlite3.Connection, write: StoryWrite, now: datetime) -> None:
    """One StoryWrite (see its docstring) inside the caller's transaction."""
    story = write.story
    absorbed_relevant = None
    if write.absorbed_id:
        row = conn.execute("SELECT relevant_at FROM stories WHERE id=?", (write.absorbed_id,)).fetchone()
        absorbed_relevant = row[0] if row else None
    _upsert_story(conn, story, now)
    if write.copy is not None:
        _record_copy(conn, write.copy, now)
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


def _swap_meta(conn: sqlite3.Connection, key: str, value: str) -> str | None:
    """Set meta ``key`` to ``value`` inside the caller's transaction; returns what it was."""
    row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    if row is None or row[0] != value:
        conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
    return None if row is None else str(row[0])


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


def _open(path: Path) -> sqlite3.Connection:
    """A connection with WAL, synchronous=FULL and the schema in place (sqlite_open.connect: processes starting
    together on a fresh file all come up)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return connect(path, _SCHEMA + _SCHEMA_ISSUE_17 + _SCHEMA_18)
    except (OSError, sqlite3.Error) as exc:
        raise StateError(f"state store {path}: cannot open: {exc}") from exc


def _quota_horizon(now: datetime) -> str:
    """Quota days before this one ('YYYY-MM-DD') are over everywhere on Earth: their counters can go."""
    return (now.astimezone(timezone.utc) - timedelta(days=2)).date().isoformat()


def _ts(value: datetime) -> float:
    return value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=timezone.utc)


# Take a lease: a new one, one ``owner`` holds already, one that ran out, or the known-dead holder's (``replacing``).
_TAKE_LEASE = """INSERT INTO leases VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET owner=excluded.owner,
                 until=excluded.until WHERE leases.owner=excluded.owner OR leases.until<=? OR leases.owner=?"""
# claim_each's statements: take an alert's lease, read its record, record it 'pending'.
_CLAIM_ALERT = (_TAKE_LEASE, "SELECT state, ref, outlets FROM alerts WHERE story_id=? AND channel=?",
                "INSERT INTO alerts VALUES (?, ?, NULL, ?, 'pending', strftime('%s','now'))")


class SqliteStore(StateStore):
    """Durable pipeline state in a SQLite file. Thread-safe (one connection behind a lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self._conn = _open(self.path)
        self._lock = threading.Lock()

    def _write(self, sql: str, params: tuple[object, ...], durable: bool = True) -> int:
        """Run one write in its own transaction; a failing disk is a loud StateError, never silent.

        ``durable=False`` (leases, and 'sent' records until the next ``sync``; see ``_fsync``): the write is seen
        by every process at once and survives their crashes, but not a power loss.
        """
        with self._lock, self._fsync(durable):
            try:
                return self._conn.execute(sql, params).rowcount
            except sqlite3.Error as exc:
                raise StateError(f"state store {self.path}: write failed: {exc}") from exc

    @contextmanager
    def _transaction(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """Several writes as one (BEGIN IMMEDIATE … COMMIT); a failure rolls back and is a StateError."""
        with self._lock, self._fsync(durable):
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

    def _fsync(self, durable: bool) -> AbstractContextManager[None]:
        """With ``durable=False`` the write commits without waiting for the disk (newsradar.sqlite_sync).

        For leases: a lease guards work in progress in a live process on this host, and a power loss ends every
        such process with it. For 'sent' alert records, which the notifier makes durable with ``sync`` before
        its deliveries are acknowledged. Entered with the connection's lock held, outside any transaction.
        """
        return nullcontext() if durable else without_fsync(self._conn)

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

    def seen_among(self, source: str, item_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        ids = list(dict.fromkeys(item_ids))
        for at in range(0, len(ids), _IN_CHUNK):
            chunk = ids[at : at + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            found.update(str(row[0]) for row in self._read(
                f"SELECT item_id FROM seen WHERE source=? AND item_id IN ({marks})", (source, *chunk)))  # fmt: skip
        return found

    def mark_seen(self, source: str, item_ids: list[str], when: datetime) -> None:
        """Remember these ids; called only after the items are durably on the bus."""
        with self._transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO seen VALUES (?, ?, ?)", [(source, i, _ts(when)) for i in item_ids])

    def prune_seen(self, older_than: timedelta, now: datetime) -> int:
        """Forget seen ids and URL claims older than the retention (by time, not by count), old quota days."""
        cutoff = _ts(now - older_than)
        with self._transaction() as conn:
            conn.execute("DELETE FROM url_claims WHERE claimed_at < ?", (cutoff,))
            conn.execute("DELETE FROM quotas WHERE day < ?", (_quota_horizon(now),))
            return conn.execute("DELETE FROM seen WHERE seen_at < ?", (cutoff,)).rowcount

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
        with self._transaction() as conn:
            before = _swap_meta(conn, "grouper", writer)
        return before is not None and before != writer

    def commit_grouping(self, writer: str, decisions: Sequence[GroupingDecision], writes: Sequence[StoryWrite],
                        now: datetime) -> bool:  # fmt: skip
        with self._transaction() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key='grouper'").fetchone()
            if row is not None and row[0] != writer:
                return False
            for decision in decisions:
                _record_decision(conn, decision)
            for part in in_runs(writes):
                if isinstance(part, StoryWrite):
                    _apply(conn, part, now)
                else:
                    _apply_many(conn, part, now)
        return True

    def grouping_rows(self) -> Iterator[GroupingRow]:
        with self._lock:
            rows = self._conn.execute("SELECT article_id, story_id, signature FROM grouped ORDER BY seq").fetchall()
        for article_id, story_id, blob in rows:
            yield GroupingRow(str(article_id), str(story_id), bytes(blob or b""))

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
            before = _swap_meta(conn, "signature_version", version)
            if before is None or before == version:
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

    def record_alert(self, story_id: str, channel: str, state: str, ref: str | None, outlets: int,
                     durable: bool = True) -> None:  # fmt: skip
        """state: 'pending' before the send (outbox), 'sent' once delivered.

        ref: "<channel id>/<ts>" for Slack bot messages, "webhook" for webhooks, a file path for the console.
        ``durable=False``: committed without waiting for the disk; ``sync`` (or any durable write after it)
        makes it durable.
        """
        self._write(
            "INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?, strftime('%s','now'))",
            (story_id, channel, ref, outlets, state),
            durable=durable or state == "pending",
        )

    def sync(self) -> None:
        """One durable write: syncing the log syncs every relaxed commit before it (WAL is written in order)."""
        self._write("INSERT OR REPLACE INTO meta VALUES ('synced_at', strftime('%s','now'))", ())

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

    def take_lease(self, key: str, owner: str, until: datetime, now: datetime, replacing: str | None = None) -> bool:
        with self._transaction(durable=False) as conn:  # see _fsync: a lease need not outlive a power loss
            return conn.execute(_TAKE_LEASE, (key, owner, _ts(until), _ts(now), replacing)).rowcount == 1

    def claim_alerts(self, claims: Sequence[tuple[str, str, str, int]], owner: str, until: datetime, now: datetime
                     ) -> list[tuple[bool, AlertRecord | None]]:  # fmt: skip
        with self._transaction() as conn:  # durable: each 'pending' is on disk before its post
            return claim_each(conn.execute, _CLAIM_ALERT, claims, owner, _ts(until), _ts(now))

    def settle_alerts(self, sent: Sequence[tuple[str, str, str, int]], unsent: Sequence[tuple[str, str]],
                      leases: Sequence[str], owner: str) -> None:
        with self._transaction(durable=False) as conn:  # durable at the notifier's sync, as a 'sent' record
            conn.executemany("INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, 'sent', strftime('%s','now'))",
                             sent)  # fmt: skip
            conn.executemany("DELETE FROM alerts WHERE story_id=? AND channel=? AND state='pending' AND ref IS NULL",
                             unsent)  # fmt: skip
            conn.executemany("DELETE FROM leases WHERE key=? AND owner=?", [(key, owner) for key in leases])

    def lease_holder(self, key: str) -> str | None:
        rows = self._read("SELECT owner FROM leases WHERE key=?", (key,))
        return str(rows[0][0]) if rows else None

    def drop_lease(self, key: str, owner: str) -> None:
        self._write("DELETE FROM leases WHERE key=? AND owner=?", (key, owner), durable=False)

    def stats(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for table in ("seen", "stories", "alerts", "digests", "grouped"):
            out[table] = int(self._read(f"SELECT COUNT(*) FROM {table}")[0][0])  # noqa: S608 - fixed names
        out["relevant_stories"] = int(self._read("SELECT COUNT(*) FROM stories WHERE relevant_at IS NOT NULL")[0][0])
        return out

    # == issue 17: dashboard reads, story copies, source health and its alert outbox ==========================
    # Tables in _SCHEMA_ISSUE_17 below; the contract and who writes what are in base.StateStore.

    @classmethod
    def open_readonly(cls, path: str | Path) -> SqliteStore:
        """A second handle on an existing store that cannot write (the dashboard's): mode=ro, query_only.

        Reads go through their own connection, so a slow page never holds the pipeline's lock.
        """
        store = cls.__new__(cls)
        store.path = Path(path)
        store.name = f"{store.path} (read-only)"
        try:
            store._conn = sqlite3.connect(
                f"{store.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0, isolation_level=None,
                check_same_thread=False,
            )
            store._conn.execute("PRAGMA query_only=ON")
            store._conn.execute("PRAGMA busy_timeout=30000")
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"state store {store.path}: cannot open read-only: {exc}") from exc
        store._lock = threading.Lock()
        return store

    def ping(self) -> None:
        try:
            self._read("SELECT COUNT(*) FROM meta")
        except sqlite3.Error as exc:
            raise StateError(f"state store {self.path}: not answering: {exc}") from exc

    def story_copies(self, story_id: str) -> list[StoryCopy]:
        rows = self._read(
            """SELECT c.article_id, c.outlet, c.url, c.title, c.published_at, c.fetched_at
               FROM story_articles s JOIN story_copies c ON c.article_id = s.article_id
               WHERE s.story_id=? ORDER BY COALESCE(c.published_at, c.fetched_at, c.recorded_at), c.article_id""",
            (story_id,),
        )
        return [StoryCopy(r[0], r[1], r[2], r[3], _dt(r[4]), _dt(r[5])) for r in rows]

    def recent_stories(
        self, *, term: str | None = None, start: datetime | None = None, end: datetime | None = None,
        query: str | None = None, limit: int = 50, offset: int = 0,
    ) -> list[Story]:
        sql = ["SELECT payload FROM stories WHERE relevant_at IS NOT NULL"]
        params: list[object] = []
        if term:
            sql.append("AND EXISTS (SELECT 1 FROM json_each(payload, '$.data.terms') WHERE value = ?)")
            params.append(term)
        if start is not None:
            sql.append("AND first_seen >= ?")
            params.append(_ts(start))
        if end is not None:
            sql.append("AND first_seen < ?")
            params.append(_ts(end))
        if query:
            sql.append("AND instr(lower(json_extract(payload, '$.data.lead.title')), lower(?)) > 0")
            params.append(query)
        sql.append("ORDER BY first_seen DESC, id LIMIT ? OFFSET ?")
        params += [limit, offset]
        return [events.decode(r[0]) for r in self._read(" ".join(sql), tuple(params))]

    def story_alerts(self, story_id: str) -> list[tuple[str, str, str | None, int]]:
        rows = self._read("SELECT channel, state, ref, outlets FROM alerts WHERE story_id=? ORDER BY channel",
                          (story_id,))
        return [(r[0], r[1], r[2], int(r[3])) for r in rows]

    def source_status(self, source: str) -> SourceStatus | None:
        rows = self._read(f"SELECT {_STATUS_COLUMNS} FROM source_status WHERE source=?", (source,))  # noqa: S608
        return _status(rows[0]) if rows else None

    def source_statuses(self) -> dict[str, SourceStatus]:
        return {r[0]: _status(r) for r in self._read(f"SELECT {_STATUS_COLUMNS} FROM source_status")}  # noqa: S608

    def save_source_status(
        self, status: SourceStatus, expect_version: int, *, poll: SourcePoll | None = None,
        alert: SourceAlert | None = None,
    ) -> bool:
        values = _status_values(status, expect_version)
        with self._transaction() as conn:
            if expect_version == 0:
                changed = conn.execute(
                    f"INSERT OR IGNORE INTO source_status ({_STATUS_COLUMNS}) VALUES ({', '.join('?' * 11)})",  # noqa: S608
                    (status.source, *values),
                ).rowcount
            else:
                changed = conn.execute(
                    f"UPDATE source_status SET {_STATUS_SET} WHERE source=? AND version=?",  # noqa: S608
                    (*values, status.source, expect_version),
                ).rowcount
            if not changed:
                return False
            if poll is not None:
                conn.execute("INSERT INTO source_polls VALUES (?, ?, ?, ?)",
                             (status.source, _ts(poll.at), poll.new_items, poll.error))
            if alert is not None:
                conn.execute(
                    "INSERT OR IGNORE INTO source_alerts (id, source, kind, detail, failures, since, last_item_at, "
                    "created_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'new')",
                    _alert_values(alert),
                )
        return True

    def items_since(self, since: datetime) -> dict[str, int]:
        rows = self._read("SELECT source, SUM(new_items) FROM source_polls WHERE at > ? GROUP BY source",
                          (_ts(since),))
        return {r[0]: int(r[1] or 0) for r in rows}

    def source_alerts_to_send(self) -> list[SourceAlert]:
        return self._source_alerts("WHERE state IN ('new', 'pending') ORDER BY created_at, id", ())

    def claim_source_alert(self, alert_id: str, owner: str, now: datetime, lease: timedelta) -> bool:
        return self._write(
            """UPDATE source_alerts SET state='pending', claimed_by=?, claimed_at=? WHERE id=? AND (state='new'
               OR (state='pending' AND (claimed_by=? OR claimed_by IS NULL OR claimed_at < ?)))""",
            (owner, _ts(now), alert_id, owner, _ts(now - lease)),
        ) == 1

    def mark_source_alert_sent(self, alert_id: str, ref: str, now: datetime) -> None:
        self._write("UPDATE source_alerts SET state='sent', ref=?, sent_at=? WHERE id=?", (ref, _ts(now), alert_id))

    def source_alerts_between(self, after: datetime | None, until: datetime) -> list[SourceAlert]:
        return self._source_alerts("WHERE created_at > ? AND created_at <= ? ORDER BY created_at, id",
                                   (_ts(after) if after else 0.0, _ts(until)))

    def _source_alerts(self, where: str, params: tuple[object, ...]) -> list[SourceAlert]:
        return [_alert(r) for r in self._read(f"SELECT {_ALERT_COLUMNS} FROM source_alerts {where}", params)]  # noqa: S608

    def outbox_pending(self) -> dict[str, int]:
        return {
            "alert": int(self._read("SELECT COUNT(*) FROM alerts WHERE state='pending'")[0][0]),
            "digest": int(self._read("SELECT COUNT(*) FROM digests WHERE state='pending'")[0][0]),
            "source_alert": int(
                self._read("SELECT COUNT(*) FROM source_alerts WHERE state IN ('new', 'pending')")[0][0]),
        }

    def prune_issue_17(self, older_than: timedelta, now: datetime) -> int:
        cutoff = _ts(now - older_than)
        with self._transaction() as conn:
            removed = conn.execute("DELETE FROM source_polls WHERE at < ?", (cutoff,)).rowcount
            removed += conn.execute("DELETE FROM source_alerts WHERE state='sent' AND created_at < ?",
                                    (cutoff,)).rowcount
            removed += conn.execute(
                "DELETE FROM story_copies WHERE recorded_at < ? AND article_id NOT IN "
                "(SELECT article_id FROM story_articles)", (cutoff,),
            ).rowcount
        return int(removed)

    # -- issue 19: API quotas and URL claims -------------------------------------------------------
    def spend_quota(self, key: str, day: str, calls: int, budget: int) -> int | None:
        with self._transaction() as conn:  # BEGIN IMMEDIATE: one writer at a time across processes
            conn.execute("INSERT OR IGNORE INTO quotas VALUES (?, ?, 0)", (key, day))
            row = conn.execute(
                "UPDATE quotas SET used=used+? WHERE key=? AND day=? AND used+?<=? RETURNING used",
                (calls, key, day, calls, budget),
            ).fetchone()
        return int(row[0]) if row else None

    def quota_used(self, key: str, day: str) -> int:
        rows = self._read("SELECT used FROM quotas WHERE key=? AND day=?", (key, day))
        return int(rows[0][0]) if rows else 0

    def claim_urls(self, claims: Sequence[tuple[str, Sequence[str]]], now: datetime) -> list[str]:
        winners: list[str] = []
        with self._transaction() as conn:
            for item_id, urls in claims:
                if not urls:
                    winners.append(item_id)
                    continue
                marks = ",".join("?" * len(urls))
                row = conn.execute(
                    f"SELECT item_id FROM url_claims WHERE url IN ({marks}) ORDER BY claimed_at, url LIMIT 1",  # noqa: S608
                    tuple(urls),
                ).fetchone()
                winner = row[0] if row else item_id
                conn.executemany("INSERT OR IGNORE INTO url_claims VALUES (?, ?, ?)",
                                 [(u, winner, _ts(now)) for u in urls])  # fmt: skip
                winners.append(winner)
        return winners

    def poll_state(self, source: str) -> PollState | None:
        rows = self._read("SELECT poll_interval, rate, failures, last_poll_at FROM poll_state WHERE source=?",
                          (source,))
        return PollState(float(rows[0][0]), rows[0][1], int(rows[0][2]), rows[0][3]) if rows else None

    def save_poll_state(self, source: str, state: PollState) -> None:
        self._write("""INSERT INTO poll_state VALUES (?, ?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET
                       poll_interval=excluded.poll_interval, rate=excluded.rate, failures=excluded.failures,
                       last_poll_at=excluded.last_poll_at""",
                    (source, state.interval, state.rate, state.failures, state.last_poll_at))  # fmt: skip

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
        rows = self._read("SELECT first_polled_at FROM first_polls WHERE source=?", (source,))
        return _dt(rows[0][0]) if rows else None

    def record_first_poll(self, source: str, started: datetime) -> None:
        self._write("INSERT OR IGNORE INTO first_polls VALUES (?, ?)", (source, _ts(started)))

    def stories_touched_since(self, after: datetime) -> list[Story]:
        rows = self._read("SELECT payload FROM stories WHERE relevant_at IS NOT NULL AND updated_at >= ?",
                          (_ts(after),))
        return [events.decode(r[0]) for r in rows]


def _record_copy(conn: sqlite3.Connection, article: Article, now: datetime) -> None:
    """One StoryWrite.copy inside the caller's transaction (the latest sighting's fields win)."""
    conn.execute("INSERT OR REPLACE INTO story_copies VALUES (?, ?, ?, ?, ?, ?, ?)", _copy_values(article, now))


def _copy_values(article: Article, now: datetime) -> tuple[object, ...]:
    return (article.id, article.outlet, article.url, article.title, _opt(article.published_at),
            _opt(article.fetched_at), _ts(now))


def _status_values(status: SourceStatus, expect_version: int) -> tuple[object, ...]:
    """The columns after ``source``, in _STATUS_COLUMNS order, with the next version."""
    return (status.status, status.failures, _opt(status.failing_since), status.last_error,
            _opt(status.last_poll_at), _opt(status.last_success_at), _opt(status.last_item_at),
            _ts(status.tracked_since), _opt(status.incident_since), expect_version + 1)


def _alert_values(alert: SourceAlert) -> tuple[object, ...]:
    return (alert.id, alert.source, alert.kind, alert.detail, alert.failures, _opt(alert.since),
            _opt(alert.last_item_at), _ts(alert.created_at))


_SCHEMA_ISSUE_17 = """
CREATE TABLE IF NOT EXISTS story_copies (
    article_id TEXT PRIMARY KEY, outlet TEXT NOT NULL, url TEXT NOT NULL, title TEXT NOT NULL,
    published_at REAL, fetched_at REAL, recorded_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS stories_by_first_seen ON stories (first_seen);
CREATE TABLE IF NOT EXISTS source_status (
    source TEXT PRIMARY KEY, status TEXT NOT NULL, failures INTEGER NOT NULL, failing_since REAL, last_error TEXT,
    last_poll_at REAL, last_success_at REAL, last_item_at REAL, tracked_since REAL NOT NULL, incident_since REAL,
    version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS source_polls (
    source TEXT NOT NULL, at REAL NOT NULL, new_items INTEGER NOT NULL, error TEXT);
CREATE INDEX IF NOT EXISTS source_polls_by_time ON source_polls (at);
CREATE TABLE IF NOT EXISTS source_alerts (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL, failures INTEGER NOT NULL,
    since REAL, last_item_at REAL, created_at REAL NOT NULL, state TEXT NOT NULL, ref TEXT, sent_at REAL,
    claimed_by TEXT, claimed_at REAL);
CREATE INDEX IF NOT EXISTS source_alerts_by_state ON source_alerts (state);
CREATE INDEX IF NOT EXISTS source_alerts_by_time ON source_alerts (created_at);
"""
_STATUS_COLUMNS = ("source, status, failures, failing_since, last_error, last_poll_at, last_success_at, "
                   "last_item_at, tracked_since, incident_since, version")
_STATUS_SET = ", ".join(f"{c.strip()}=?" for c in _STATUS_COLUMNS.split(",")[1:])
_ALERT_COLUMNS = "id, source, kind, detail, failures, since, last_item_at, created_at, state, ref"
_EPOCH = datetime.fromtimestamp(0, tz=timezone.utc)


def _opt(value: datetime | None) -> float | None:
    return None if value is None else _ts(value)


def _status(row: tuple) -> SourceStatus:
    return SourceStatus(row[0], row[1], int(row[2]), _dt(row[3]), row[4], _dt(row[5]), _dt(row[6]), _dt(row[7]),
                        _dt(row[8]) or _EPOCH, _dt(row[9]), int(row[10]))


def _alert(row: tuple) -> SourceAlert:
    return SourceAlert(row[0], row[1], row[2], row[3], int(row[4]), _dt(row[5]), _dt(row[6]), _dt(row[7]) or _EPOCH,
                       row[8], row[9])


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
CREATE TABLE IF NOT EXISTS first_polls (source TEXT PRIMARY KEY, first_polled_at REAL NOT NULL);
"""
