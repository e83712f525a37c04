"""The state store: everything that must survive a restart, in one SQLite file (WAL).

Holds HTTP validators and seen item ids per source (collectors), story records
(grouping stage), and the idempotency keys of every alert and digest
(notifiers). Several processes may share the file. Every write is its own
transaction with synchronous=FULL, so a stage can acknowledge a bus delivery as
soon as the write returns.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from newsradar import events
from newsradar.errors import StateError
from newsradar.events import Article, Story

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
            self._conn.executescript(_SCHEMA + _SCHEMA_ISSUE_17)
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


    # == issue 17: dashboard reads, story copies, source health and its alert outbox ==========================
    # Tables in _SCHEMA_ISSUE_17 below. Writers: the grouping stage (record_copy), the collector stage
    # (save_source_status), the source-alert sender (mark_source_alert), the hourly maintenance
    # (prune_issue_17). Everything else here only reads, and the dashboard opens the file read-only.

    @classmethod
    def open_readonly(cls, path: str | Path) -> Store:
        """A second handle on an existing store that cannot write (the dashboard's): mode=ro, query_only.

        Reads go through their own connection, so a slow page never holds the pipeline's lock.
        """
        store = cls.__new__(cls)
        store.path = Path(path)
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
        """Raise StateError unless the store answers a trivial query (readiness probe)."""
        try:
            self._read("SELECT COUNT(*) FROM meta")
        except sqlite3.Error as exc:
            raise StateError(f"state store {self.path}: not answering: {exc}") from exc

    def record_copy(self, article: Article, now: datetime) -> None:
        """Remember one copy's outlet, headline, link and times, keyed by article id (idempotent).

        Written by the grouping stage for every article it places, before save_story; the dashboard lists
        a story's copies by joining story_articles, which absorb_story already hands to the survivor.
        """
        self._write(
            "INSERT OR REPLACE INTO story_copies VALUES (?, ?, ?, ?, ?, ?, ?)",
            (article.id, article.outlet, article.url, article.title,
             _ts(article.published_at) if article.published_at else None,
             _ts(article.fetched_at) if article.fetched_at else None, _ts(now)),
        )

    def story_copies(self, story_id: str) -> list[StoryCopy]:
        """Every recorded copy of a story, earliest published first."""
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
        """Relevant stories, newest first sighting first; optionally one term, first seen in [start, end),
        and a headline containing ``query`` (case-insensitive for Latin letters)."""
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
        """(channel, state, ref, outlets shown) of every alert of a story."""
        rows = self._read("SELECT channel, state, ref, outlets FROM alerts WHERE story_id=? ORDER BY channel",
                          (story_id,))
        return [(r[0], r[1], r[2], int(r[3])) for r in rows]

    def source_status(self, source: str) -> SourceStatus | None:
        """The stored health of one source, or None before its first recorded poll."""
        rows = self._read(f"SELECT {_STATUS_COLUMNS} FROM source_status WHERE source=?", (source,))
        return _status(rows[0]) if rows else None

    def source_statuses(self) -> dict[str, SourceStatus]:
        """The stored health of every source ever polled, by name."""
        return {r[0]: _status(r) for r in self._read(f"SELECT {_STATUS_COLUMNS} FROM source_status")}

    def save_source_status(
        self, status: SourceStatus, expect_version: int, *, poll: SourcePoll | None = None,
        alert: SourceAlert | None = None,
    ) -> bool:
        """Compare-and-set a source's health, with the poll that changed it and the alert it opens, atomically.

        Writes only if the stored version is still ``expect_version`` (0: no row yet), then stores
        ``status`` as version + 1, appends ``poll`` to source_polls and queues ``alert`` (state 'new',
        INSERT OR IGNORE on its id, so a transition decided twice is queued once). Returns False, writing
        nothing, when another writer got there first: the caller re-reads and decides again.
        """
        values = (status.status, status.failures, _opt(status.failing_since), status.last_error,
                  _opt(status.last_poll_at), _opt(status.last_success_at), _opt(status.last_item_at),
                  _ts(status.tracked_since), _opt(status.incident_since), expect_version + 1)
        with self._transaction() as conn:
            if expect_version == 0:
                changed = conn.execute(
                    f"INSERT OR IGNORE INTO source_status ({_STATUS_COLUMNS}) VALUES (?, {', '.join('?' * 10)})",
                    (status.source, *values),
                ).rowcount
            else:
                changed = conn.execute(
                    """UPDATE source_status SET status=?, failures=?, failing_since=?, last_error=?, last_poll_at=?,
                       last_success_at=?, last_item_at=?, tracked_since=?, incident_since=?, version=?
                       WHERE source=? AND version=?""",
                    (*values, status.source, expect_version),
                ).rowcount
            if not changed:
                return False
            if poll is not None:
                conn.execute("INSERT INTO source_polls VALUES (?, ?, ?, ?)",
                             (status.source, _ts(poll.at), poll.new_items, poll.error))
            if alert is not None:
                conn.execute(
                    "INSERT OR IGNORE INTO source_alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'new', NULL, NULL)",
                    (alert.id, alert.source, alert.kind, alert.detail, alert.failures, _opt(alert.since),
                     _opt(alert.last_item_at), _ts(alert.created_at)),
                )
        return True

    def items_since(self, since: datetime) -> dict[str, int]:
        """New items published per source by polls after ``since`` (for "items in the last 24 h")."""
        rows = self._read("SELECT source, SUM(new_items) FROM source_polls WHERE at > ? GROUP BY source",
                          (_ts(since),))
        return {r[0]: int(r[1] or 0) for r in rows}

    def source_alerts_to_send(self) -> list[SourceAlert]:
        """Queued ('new') and interrupted ('pending') source alerts, oldest first, for the sender."""
        return self._source_alerts("WHERE state IN ('new', 'pending') ORDER BY created_at, id", ())

    def mark_source_alert(self, alert_id: str, state: str, ref: str | None = None) -> None:
        """state: 'pending' right before the send (outbox), 'sent' with its ref once delivered."""
        self._write(
            "UPDATE source_alerts SET state=?, ref=COALESCE(?, ref), sent_at=CASE WHEN ?='sent' "
            "THEN strftime('%s','now') ELSE sent_at END WHERE id=?",
            (state, ref, state, alert_id),
        )

    def source_alerts_between(self, after: datetime | None, until: datetime) -> list[SourceAlert]:
        """Source alerts decided in (after, until], oldest first: the digest's "소스 상태" lines."""
        return self._source_alerts("WHERE created_at > ? AND created_at <= ? ORDER BY created_at, id",
                                   (_ts(after) if after else 0.0, _ts(until)))

    def _source_alerts(self, where: str, params: tuple[object, ...]) -> list[SourceAlert]:
        rows = self._read(
            "SELECT id, source, kind, detail, failures, since, last_item_at, created_at, state, ref "
            f"FROM source_alerts {where}", params,  # noqa: S608 - fixed clauses
        )
        return [SourceAlert(r[0], r[1], r[2], r[3], int(r[4]), _dt(r[5]), _dt(r[6]), _dt(r[7]) or _EPOCH,
                            r[8], r[9]) for r in rows]

    def outbox_pending(self) -> dict[str, int]:
        """Effects started but not known delivered: story alerts, digests, source alerts (for /metrics)."""
        return {
            "alert": int(self._read("SELECT COUNT(*) FROM alerts WHERE state='pending'")[0][0]),
            "digest": int(self._read("SELECT COUNT(*) FROM digests WHERE state='pending'")[0][0]),
            "source_alert": int(
                self._read("SELECT COUNT(*) FROM source_alerts WHERE state IN ('new', 'pending')")[0][0]),
        }

    def prune_issue_17(self, older_than: timedelta, now: datetime) -> int:
        """Forget polls, sent source alerts and copies of pruned stories older than the retention."""
        cutoff = _ts(now - older_than)
        removed = self._write("DELETE FROM source_polls WHERE at < ?", (cutoff,))
        removed += self._write("DELETE FROM source_alerts WHERE state='sent' AND created_at < ?", (cutoff,))
        return removed + self._write(
            "DELETE FROM story_copies WHERE recorded_at < ? AND article_id NOT IN "
            "(SELECT article_id FROM story_articles)", (cutoff,),
        )


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
    since REAL, last_item_at REAL, created_at REAL NOT NULL, state TEXT NOT NULL, ref TEXT, sent_at REAL);
CREATE INDEX IF NOT EXISTS source_alerts_by_state ON source_alerts (state);
CREATE INDEX IF NOT EXISTS source_alerts_by_time ON source_alerts (created_at);
"""
_STATUS_COLUMNS = ("source, status, failures, failing_since, last_error, last_poll_at, last_success_at, "
                   "last_item_at, tracked_since, incident_since, version")
_EPOCH = datetime.fromtimestamp(0, tz=timezone.utc)


def _opt(value: datetime | None) -> float | None:
    return None if value is None else _ts(value)


@dataclass(frozen=True)
class StoryCopy:
    """One copy of a story as the grouping stage saw it (for the dashboard's story page)."""

    article_id: str
    outlet: str
    url: str
    title: str
    published_at: datetime | None
    fetched_at: datetime | None


@dataclass(frozen=True)
class SourcePoll:
    """One poll of one source: when, how many new items it published, the error if it failed."""

    at: datetime
    new_items: int
    error: str | None


@dataclass(frozen=True)
class SourceStatus:
    """The health of one source as stored: status 'healthy' | 'failing' | 'silent', and what led there.

    ``incident_since`` is set while an incident (failing or silent) is open: its alert was queued, and its
    one recovery message will be queued when it closes. ``version`` guards concurrent writers.
    """

    source: str
    status: str
    failures: int
    failing_since: datetime | None
    last_error: str | None
    last_poll_at: datetime | None
    last_success_at: datetime | None
    last_item_at: datetime | None
    tracked_since: datetime
    incident_since: datetime | None
    version: int = 0


@dataclass(frozen=True)
class SourceAlert:
    """One queued ops message: kind 'failing' | 'silent' | 'recovered', for one incident of one source.

    ``id`` is "<source>|<kind>|<incident start>", so deciding the same transition twice queues it once.
    state: 'new' (queued), 'pending' (a send began), 'sent'.
    """

    id: str
    source: str
    kind: str
    detail: str
    failures: int
    since: datetime | None
    last_item_at: datetime | None
    created_at: datetime
    state: str = "new"
    ref: str | None = None


def _status(row: tuple) -> SourceStatus:
    return SourceStatus(row[0], row[1], int(row[2]), _dt(row[3]), row[4], _dt(row[5]), _dt(row[6]), _dt(row[7]),
                        _dt(row[8]) or _EPOCH, _dt(row[9]), int(row[10]))
