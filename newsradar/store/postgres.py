"""The state store in PostgreSQL: roles on several hosts share one database (psycopg 3, a connection pool).

The DSN comes from the environment variable ``state.dsn_env`` names, never from the YAML, and is never
logged (``name`` shows host, port and database only). Every write is a transaction, committed before
the method returns; the grouping stage's batch is one (``commit_grouping``), fenced by the writer's
claim, which it reads ``FOR UPDATE`` so that two groupers can never both write a batch.

Errors: a lost or refused connection, a pool with no free connection in time, a serialization
failure or a deadlock is a TransientError (the runner retries; nothing was committed); anything
else the server refuses (disk full, read-only, no privilege) is a StateError (the stage stops).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pgerrors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from newsradar import events
from newsradar.errors import ConfigError, StateError, TransientError
from newsradar.events import Article, Story
from newsradar.settings import StateSettings, secret
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

log = logging.getLogger(__name__)
T = TypeVar("T")

_SCHEMA_LOCK = 0x6E657773  # advisory lock taken while creating tables: roles starting together do not race
_SCHEMA = """
CREATE TABLE IF NOT EXISTS validators (
    source TEXT NOT NULL, url TEXT NOT NULL, etag TEXT, last_modified TEXT, PRIMARY KEY (source, url));
CREATE TABLE IF NOT EXISTS seen (
    source TEXT NOT NULL, item_id TEXT NOT NULL, seen_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (source, item_id));
CREATE INDEX IF NOT EXISTS seen_by_time ON seen (seen_at);
CREATE TABLE IF NOT EXISTS stories (
    id TEXT PRIMARY KEY, payload TEXT NOT NULL, first_seen DOUBLE PRECISION NOT NULL,
    relevant_at DOUBLE PRECISION, updated_at DOUBLE PRECISION NOT NULL, copies INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS stories_by_relevance ON stories (relevant_at);
CREATE INDEX IF NOT EXISTS stories_by_update ON stories (updated_at);
CREATE TABLE IF NOT EXISTS story_articles (
    story_id TEXT NOT NULL, article_id TEXT NOT NULL, PRIMARY KEY (story_id, article_id));
CREATE TABLE IF NOT EXISTS alerts (
    story_id TEXT NOT NULL, channel TEXT NOT NULL, ref TEXT, outlets INTEGER NOT NULL,
    state TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (story_id, channel));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS digests (
    day TEXT NOT NULL, recipient TEXT NOT NULL, state TEXT NOT NULL, sent_at DOUBLE PRECISION,
    cutoff DOUBLE PRECISION NOT NULL, PRIMARY KEY (day, recipient));
CREATE TABLE IF NOT EXISTS grouped (
    seq BIGSERIAL PRIMARY KEY, article_id TEXT NOT NULL UNIQUE, story_id TEXT NOT NULL,
    t DOUBLE PRECISION NOT NULL, signature BYTEA NOT NULL);
CREATE INDEX IF NOT EXISTS grouped_by_time ON grouped (t);
CREATE INDEX IF NOT EXISTS grouped_by_story ON grouped (story_id);
CREATE TABLE IF NOT EXISTS merged (
    absorbed TEXT PRIMARY KEY, survivor TEXT NOT NULL, article_id TEXT NOT NULL, t DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS merged_by_article ON merged (article_id);
CREATE INDEX IF NOT EXISTS merged_by_survivor ON merged (survivor);
CREATE TABLE IF NOT EXISTS roundups (story_id TEXT PRIMARY KEY, t DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS leases (key TEXT PRIMARY KEY, owner TEXT NOT NULL, until DOUBLE PRECISION NOT NULL);
-- issue 19: API quotas and URL claims
CREATE TABLE IF NOT EXISTS quotas (key TEXT NOT NULL, day TEXT NOT NULL, used INTEGER NOT NULL, PRIMARY KEY (key, day));
CREATE TABLE IF NOT EXISTS url_claims (
    url TEXT PRIMARY KEY, item_id TEXT NOT NULL, claimed_at DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS url_claims_by_time ON url_claims (claimed_at);
CREATE TABLE IF NOT EXISTS poll_state (
    source TEXT PRIMARY KEY, poll_interval DOUBLE PRECISION NOT NULL, rate DOUBLE PRECISION,
    failures INTEGER NOT NULL, last_poll_at DOUBLE PRECISION);
"""
_TRANSIENT = (pgerrors.SerializationFailure, pgerrors.DeadlockDetected, pgerrors.LockNotAvailable,
              pgerrors.AdminShutdown, pgerrors.CannotConnectNow, pgerrors.QueryCanceled)  # fmt: skip


def _ts(value: datetime) -> float:
    return value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=timezone.utc)


def describe(dsn: str) -> str:
    """Host, port and database of a DSN, for messages: never its user or password."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "postgresql (unreadable DSN)"
    return f"postgresql://{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


_UPSERT_STORY = """INSERT INTO stories VALUES (%s, %s, %s, %s, %s, %s)
    ON CONFLICT (id) DO UPDATE SET payload=excluded.payload, updated_at=excluded.updated_at,
    copies=excluded.copies, relevant_at=COALESCE(stories.relevant_at, excluded.relevant_at)"""


def _story_row(story: Story, now: datetime) -> tuple[Any, ...]:
    return (story.id, events.encode(story).decode("utf-8"), _ts(story.first_seen),
            _ts(now) if story.terms else None, _ts(now), story.copies)  # fmt: skip


def _upsert_story(cur: psycopg.Cursor, story: Story, now: datetime) -> None:
    """Write a story record; the time it first became relevant (it matched a term) is kept."""
    cur.execute(_UPSERT_STORY, _story_row(story, now))


def _apply(cur: psycopg.Cursor, write: StoryWrite, now: datetime) -> None:
    """One StoryWrite (see its docstring) inside the caller's transaction."""
    story = write.story
    absorbed_relevant = None
    if write.absorbed_id:
        row = cur.execute("SELECT relevant_at FROM stories WHERE id=%s", (write.absorbed_id,)).fetchone()
        absorbed_relevant = row[0] if row else None
    _upsert_story(cur, story, now)
    if write.copy is not None:
        _record_copy(cur, write.copy, now)
    if write.article_id:
        cur.execute("INSERT INTO story_articles VALUES (%s, %s) ON CONFLICT DO NOTHING", (story.id, write.article_id))
    if not write.absorbed_id:
        return
    if absorbed_relevant is not None:
        cur.execute("UPDATE stories SET relevant_at=LEAST(COALESCE(relevant_at, %s), %s) WHERE id=%s",
                    (absorbed_relevant, absorbed_relevant, story.id))  # fmt: skip
    cur.execute("""INSERT INTO story_articles SELECT %s, article_id FROM story_articles WHERE story_id=%s
                   ON CONFLICT DO NOTHING""", (story.id, write.absorbed_id))  # fmt: skip
    cur.execute("DELETE FROM story_articles WHERE story_id=%s", (write.absorbed_id,))
    cur.execute("DELETE FROM stories WHERE id=%s", (write.absorbed_id,))
    cur.execute(  # hand the absorbed story's alerts over where the survivor has none on that channel
        """UPDATE alerts AS a SET story_id=%s WHERE a.story_id=%s
           AND NOT EXISTS (SELECT 1 FROM alerts b WHERE b.story_id=%s AND b.channel=a.channel)""",
        (story.id, write.absorbed_id, story.id),
    )


def _apply_many(cur: psycopg.Cursor, writes: Sequence[StoryWrite], now: datetime) -> None:
    """Story writes that fold nothing, as a few pipelined statements (each story's last state once: base.latest)."""
    cur.executemany(_UPSERT_STORY, [_story_row(story, now) for story in latest(writes)])
    copies = [_copy_row(w.copy, now) for w in writes if w.copy is not None]
    if copies:
        cur.executemany(_UPSERT_COPY, copies)
    members = [(w.story.id, w.article_id) for w in writes if w.article_id]
    if members:
        cur.executemany("INSERT INTO story_articles VALUES (%s, %s) ON CONFLICT DO NOTHING", members)


def _swap_meta(cur: psycopg.Cursor, key: str, value: str) -> str | None:
    """Set meta ``key`` to ``value`` inside the caller's transaction (the row locked); returns what it was."""
    row = cur.execute("SELECT value FROM meta WHERE key=%s FOR UPDATE", (key,)).fetchone()
    if row is None or row[0] != value:
        cur.execute("INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value=excluded.value",
                    (key, value))  # fmt: skip
    return None if row is None else str(row[0])


def _decision_marks(cur: psycopg.Cursor, d: GroupingDecision) -> None:
    """What a GroupingDecision records beside its row: the round-up it started, the stories it merged."""
    if d.roundup:
        cur.execute("INSERT INTO roundups VALUES (%s, %s) ON CONFLICT DO NOTHING", (d.story_id, d.t))
    for other in d.absorbed:
        cur.execute("UPDATE grouped SET story_id=%s WHERE story_id=%s", (d.story_id, other))
        cur.execute("UPDATE merged SET survivor=%s WHERE survivor=%s", (d.story_id, other))
        cur.execute("""INSERT INTO merged VALUES (%s, %s, %s, %s) ON CONFLICT (absorbed) DO UPDATE
                       SET survivor=excluded.survivor, article_id=excluded.article_id, t=excluded.t""",
                    (other, d.story_id, d.article_id, d.t))  # fmt: skip


# Take a lease: a new one, one ``owner`` holds already, one that ran out, or the known-dead holder's (``replacing``).
_TAKE_LEASE = """INSERT INTO leases VALUES (%s, %s, %s) ON CONFLICT (key) DO UPDATE
                 SET owner=excluded.owner, until=excluded.until
                 WHERE leases.owner=excluded.owner OR leases.until<=%s OR leases.owner=%s"""
# claim_each's statements: take an alert's lease, read its record, record it 'pending'.
_CLAIM_ALERT = (_TAKE_LEASE, "SELECT state, ref, outlets FROM alerts WHERE story_id=%s AND channel=%s",
                """INSERT INTO alerts VALUES (%s, %s, NULL, %s, 'pending', EXTRACT(EPOCH FROM now()))
                   ON CONFLICT (story_id, channel) DO NOTHING""")


class PostgresStore(StateStore):
    """Durable pipeline state in a PostgreSQL database, shared by every role that names it."""

    def __init__(self, dsn: str, pool_size: int = 4, connect_timeout: float = 10.0) -> None:
        self.name = describe(dsn)
        self._timeout = connect_timeout
        try:
            self._pool = ConnectionPool(dsn, min_size=1, max_size=pool_size, timeout=connect_timeout, open=False,
                                        kwargs={"connect_timeout": max(1, int(connect_timeout))},
                                        name="newsradar-state")  # fmt: skip
            self._pool.open(wait=True, timeout=connect_timeout)
        except (psycopg.Error, PoolTimeout) as exc:
            raise StateError(f"state store {self.name}: cannot connect: {type(exc).__name__}: {exc}") from None
        self._run(self._create_schema, "create tables")

    @classmethod
    def from_settings(cls, settings: StateSettings) -> PostgresStore:
        dsn = secret(settings.dsn_env)
        if not dsn:
            raise ConfigError(f"state.kind is 'postgres' but ${settings.dsn_env} (state.dsn_env) is not set")
        return cls(dsn, settings.pool_size, settings.connect_timeout)

    @staticmethod
    def _create_schema(cur: psycopg.Cursor) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        cur.execute(_SCHEMA)
        cur.execute(_SCHEMA_ISSUE_17)
        cur.execute(_SCHEMA_18)

    # -- one transaction per call ------------------------------------------------------------------------
    def _run(self, work: Callable[[psycopg.Cursor], T], what: str) -> T:
        """``work`` in one transaction, committed before returning; errors mapped as the module says."""
        try:
            with self._pool.connection(timeout=self._timeout) as conn, conn.transaction(), conn.cursor() as cur:
                return work(cur)
        except PoolTimeout as exc:
            raise TransientError(f"state store {self.name}: no connection within {self._timeout:.0f}s "
                                 f"({what})") from exc
        except _TRANSIENT as exc:
            raise TransientError(f"state store {self.name}: {what}: {type(exc).__name__}: {exc}") from exc
        except psycopg.OperationalError as exc:
            raise TransientError(f"state store {self.name}: {what}: connection failed: {exc}") from exc
        except psycopg.Error as exc:
            raise StateError(f"state store {self.name}: {what} failed: {type(exc).__name__}: {exc}") from exc

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._run(lambda cur: cur.execute(sql, params).fetchall(), "read")

    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._run(lambda cur: cur.execute(sql, params).rowcount, "write")

    def close(self) -> None:
        self._pool.close()

    # -- collectors --------------------------------------------------------------------------------------
    def validators(self, source: str, url: str) -> tuple[str | None, str | None]:
        rows = self._read("SELECT etag, last_modified FROM validators WHERE source=%s AND url=%s", (source, url))
        return (rows[0][0], rows[0][1]) if rows else (None, None)

    def set_validators(self, source: str, url: str, etag: str | None, last_modified: str | None) -> None:
        self._write("""INSERT INTO validators VALUES (%s, %s, %s, %s) ON CONFLICT (source, url)
                       DO UPDATE SET etag=excluded.etag, last_modified=excluded.last_modified""",
                    (source, url, etag, last_modified))  # fmt: skip

    def is_seen(self, source: str, item_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM seen WHERE source=%s AND item_id=%s", (source, item_id)))

    def seen_among(self, source: str, item_ids: Sequence[str]) -> set[str]:
        if not item_ids:
            return set()
        rows = self._read("SELECT item_id FROM seen WHERE source=%s AND item_id = ANY(%s)", (source, list(item_ids)))
        return {str(row[0]) for row in rows}

    def mark_seen(self, source: str, item_ids: list[str], when: datetime) -> None:
        rows = [(source, i, _ts(when)) for i in item_ids]
        self._run(lambda cur: cur.executemany(
            "INSERT INTO seen VALUES (%s, %s, %s) ON CONFLICT (source, item_id) DO UPDATE SET seen_at=excluded.seen_at",
            rows), "mark seen")  # fmt: skip

    def prune_seen(self, older_than: timedelta, now: datetime) -> int:
        cutoff = _ts(now - older_than)
        horizon = (now.astimezone(timezone.utc) - timedelta(days=2)).date().isoformat()

        def work(cur: psycopg.Cursor) -> int:
            cur.execute("DELETE FROM url_claims WHERE claimed_at < %s", (cutoff,))
            cur.execute("DELETE FROM quotas WHERE day < %s", (horizon,))
            return int(cur.execute("DELETE FROM seen WHERE seen_at < %s", (cutoff,)).rowcount)

        return self._run(work, "prune seen")

    # -- grouping ----------------------------------------------------------------------------------------
    def story(self, story_id: str) -> Story | None:
        rows = self._read("SELECT payload FROM stories WHERE id=%s", (story_id,))
        return events.decode(rows[0][0]) if rows else None

    def story_has_article(self, story_id: str, article_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM story_articles WHERE story_id=%s AND article_id=%s",
                               (story_id, article_id)))  # fmt: skip

    def write_stories(self, writes: Sequence[StoryWrite], now: datetime) -> None:
        def work(cur: psycopg.Cursor) -> None:
            for write in writes:
                _apply(cur, write, now)

        self._run(work, "write stories")

    def claim_grouping(self, writer: str) -> bool:
        def work(cur: psycopg.Cursor) -> bool:
            before = _swap_meta(cur, "grouper", writer)
            return before is not None and before != writer

        return self._run(work, "claim grouping")

    def commit_grouping(self, writer: str, decisions: Sequence[GroupingDecision], writes: Sequence[StoryWrite],
                        now: datetime) -> bool:  # fmt: skip
        def work(cur: psycopg.Cursor) -> bool:
            row = cur.execute("SELECT value FROM meta WHERE key='grouper' FOR UPDATE").fetchone()
            if row is not None and row[0] != writer:
                return False
            # One round trip per kind of statement, not per row (psycopg pipelines executemany): the
            # decisions' rows first, then their merges in order; the story writes in runs between the
            # rare writes that fold a story into another, which keep their own statements and order.
            cur.executemany(  # a decision already there (a redelivery) is kept
                """INSERT INTO grouped (article_id, story_id, t, signature) VALUES (%s, %s, %s, %s)
                ON CONFLICT (article_id) DO NOTHING""",
                [(d.article_id, d.story_id, d.t, d.signature) for d in decisions],
            )
            for decision in decisions:
                if decision.roundup or decision.absorbed:
                    _decision_marks(cur, decision)
            for part in in_runs(writes):
                if isinstance(part, StoryWrite):
                    _apply(cur, part, now)
                else:
                    _apply_many(cur, part, now)
            return True

        return self._run(work, "commit grouping")

    def grouping_rows(self) -> Iterator[GroupingRow]:
        rows = self._read("SELECT article_id, story_id, signature FROM grouped ORDER BY seq")
        for article_id, story_id, blob in rows:
            yield GroupingRow(str(article_id), str(story_id), bytes(blob or b""))

    def grouping_story_of(self, article_id: str) -> str | None:
        rows = self._read("SELECT story_id FROM grouped WHERE article_id=%s", (article_id,))
        return str(rows[0][0]) if rows else None

    def grouping_merged_by(self, article_id: str) -> tuple[str, ...]:
        rows = self._read("SELECT absorbed FROM merged WHERE article_id=%s ORDER BY absorbed", (article_id,))
        return tuple(str(r[0]) for r in rows)

    def grouping_survivors(self) -> dict[str, str]:
        return {str(a): str(b) for a, b in self._read("SELECT absorbed, survivor FROM merged")}

    def grouping_roundups(self) -> set[str]:
        return {str(r[0]) for r in self._read("SELECT story_id FROM roundups")}

    def grouping_evict(self, horizon: float) -> int:
        def work(cur: psycopg.Cursor) -> int:
            cur.execute("DELETE FROM merged WHERE t < %s", (horizon,))
            cur.execute("DELETE FROM roundups WHERE t < %s", (horizon,))
            return int(cur.execute("DELETE FROM grouped WHERE t < %s", (horizon,)).rowcount)

        return self._run(work, "evict grouping decisions")

    def grouping_signature_version(self, version: str) -> bool:
        def work(cur: psycopg.Cursor) -> bool:
            before = _swap_meta(cur, "signature_version", version)
            if before is None or before == version:
                return False
            cur.execute("UPDATE grouped SET signature = ''::bytea")
            return True

        return self._run(work, "signature version")

    def relevant_stories(self, after: datetime | None, until: datetime) -> list[Story]:
        rows = self._read("""SELECT payload FROM stories WHERE relevant_at > %s AND relevant_at <= %s
                             ORDER BY relevant_at""", (_ts(after) if after else 0.0, _ts(until)))  # fmt: skip
        return [events.decode(r[0]) for r in rows]

    def prune_stories(self, older_than: timedelta, now: datetime) -> int:
        cutoff = _ts(now - older_than)

        def work(cur: psycopg.Cursor) -> int:
            cur.execute("DELETE FROM story_articles WHERE story_id IN (SELECT id FROM stories WHERE updated_at < %s)",
                        (cutoff,))  # fmt: skip
            return int(cur.execute("DELETE FROM stories WHERE updated_at < %s", (cutoff,)).rowcount)

        return self._run(work, "prune stories")

    # -- notifiers ---------------------------------------------------------------------------------------
    def alert(self, story_id: str, channel: str) -> tuple[str, str | None, int] | None:
        rows = self._read("SELECT state, ref, outlets FROM alerts WHERE story_id=%s AND channel=%s",
                          (story_id, channel))
        return (rows[0][0], rows[0][1], int(rows[0][2])) if rows else None

    def record_alert(self, story_id: str, channel: str, state: str, ref: str | None, outlets: int,
                     durable: bool = True) -> None:  # fmt: skip
        """Every commit here is durable: ``durable`` changes nothing."""
        self._write("""INSERT INTO alerts VALUES (%s, %s, %s, %s, %s, EXTRACT(EPOCH FROM now()))
                       ON CONFLICT (story_id, channel) DO UPDATE SET ref=excluded.ref, outlets=excluded.outlets,
                       state=excluded.state, updated_at=excluded.updated_at""",
                    (story_id, channel, ref, outlets, state))  # fmt: skip

    def sync(self) -> None:
        """Nothing to do: every commit here is durable."""

    def digest_state(self, day: str, recipient: str) -> str | None:
        rows = self._read("SELECT state FROM digests WHERE day=%s AND recipient=%s", (day, recipient))
        return rows[0][0] if rows else None

    def record_digest(self, day: str, recipient: str, state: str, cutoff: datetime, sent_at: datetime | None) -> None:
        self._write("""INSERT INTO digests VALUES (%s, %s, %s, %s, %s) ON CONFLICT (day, recipient)
                       DO UPDATE SET state=excluded.state, sent_at=excluded.sent_at, cutoff=excluded.cutoff""",
                    (day, recipient, state, _ts(sent_at) if sent_at else None, _ts(cutoff)))  # fmt: skip

    def last_digest_cutoff(self, recipient: str) -> datetime | None:
        rows = self._read("SELECT MAX(cutoff) FROM digests WHERE recipient=%s AND state='sent'", (recipient,))
        return _dt(rows[0][0]) if rows and rows[0][0] is not None else None

    def take_lease(self, key: str, owner: str, until: datetime, now: datetime, replacing: str | None = None) -> bool:
        return self._write(_TAKE_LEASE, (key, owner, _ts(until), _ts(now), replacing)) == 1

    def claim_alerts(self, claims: Sequence[tuple[str, str, str, int]], owner: str, until: datetime, now: datetime
                     ) -> list[tuple[bool, AlertRecord | None]]:  # fmt: skip
        return self._run(lambda cur: claim_each(cur.execute, _CLAIM_ALERT, claims, owner, _ts(until), _ts(now)),
                         "claim alerts")  # fmt: skip

    def settle_alerts(self, sent: Sequence[tuple[str, str, str, int]], unsent: Sequence[tuple[str, str]],
                      leases: Sequence[str], owner: str) -> None:
        def work(cur: psycopg.Cursor) -> None:
            if sent:
                cur.executemany("""INSERT INTO alerts VALUES (%s, %s, %s, %s, 'sent', EXTRACT(EPOCH FROM now()))
                                   ON CONFLICT (story_id, channel) DO UPDATE SET ref=excluded.ref,
                                   outlets=excluded.outlets, state=excluded.state, updated_at=excluded.updated_at""",
                                list(sent))  # fmt: skip
            if unsent:
                cur.executemany("""DELETE FROM alerts WHERE story_id=%s AND channel=%s AND state='pending'
                                   AND ref IS NULL""", list(unsent))  # fmt: skip
            if leases:
                cur.executemany("DELETE FROM leases WHERE key=%s AND owner=%s", [(key, owner) for key in leases])

        self._run(work, "settle alerts")

    def lease_holder(self, key: str) -> str | None:
        rows = self._read("SELECT owner FROM leases WHERE key=%s", (key,))
        return str(rows[0][0]) if rows else None

    def drop_lease(self, key: str, owner: str) -> None:
        self._write("DELETE FROM leases WHERE key=%s AND owner=%s", (key, owner))

    def stats(self) -> dict[str, int]:
        def work(cur: psycopg.Cursor) -> dict[str, int]:
            out = {}
            for table in ("seen", "stories", "alerts", "digests", "grouped"):
                out[table] = int(cur.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # type: ignore[index]  # noqa: S608
            row = cur.execute("SELECT COUNT(*) FROM stories WHERE relevant_at IS NOT NULL").fetchone()
            out["relevant_stories"] = int(row[0]) if row else 0
            return out

        return self._run(work, "stats")

    # == issue 17: dashboard reads, story copies, source health and its alert outbox ==========================
    # Tables in _SCHEMA_ISSUE_17 below; the contract and who writes what are in base.StateStore.

    def ping(self) -> None:
        self._read("SELECT 1")

    def story_copies(self, story_id: str) -> list[StoryCopy]:
        rows = self._read(
            """SELECT c.article_id, c.outlet, c.url, c.title, c.published_at, c.fetched_at
               FROM story_articles s JOIN story_copies c ON c.article_id = s.article_id
               WHERE s.story_id=%s ORDER BY COALESCE(c.published_at, c.fetched_at, c.recorded_at), c.article_id""",
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
            sql.append("AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(payload::jsonb #> '{data,terms}') t "
                       "WHERE t = %s)")
            params.append(term)
        if start is not None:
            sql.append("AND first_seen >= %s")
            params.append(_ts(start))
        if end is not None:
            sql.append("AND first_seen < %s")
            params.append(_ts(end))
        if query:
            # strpos, not LIKE: a % or _ in the query is a character to find, as in SQLite's instr
            sql.append("AND strpos(lower(payload::jsonb #>> '{data,lead,title}'), lower(%s)) > 0")
            params.append(query)
        sql.append("ORDER BY first_seen DESC, id LIMIT %s OFFSET %s")
        params += [limit, offset]
        return [events.decode(r[0]) for r in self._read(" ".join(sql), params)]

    def story_alerts(self, story_id: str) -> list[tuple[str, str, str | None, int]]:
        rows = self._read("SELECT channel, state, ref, outlets FROM alerts WHERE story_id=%s ORDER BY channel",
                          (story_id,))
        return [(r[0], r[1], r[2], int(r[3])) for r in rows]

    def source_status(self, source: str) -> SourceStatus | None:
        rows = self._read(f"SELECT {_STATUS_COLUMNS} FROM source_status WHERE source=%s", (source,))  # noqa: S608
        return _status(rows[0]) if rows else None

    def source_statuses(self) -> dict[str, SourceStatus]:
        return {r[0]: _status(r) for r in self._read(f"SELECT {_STATUS_COLUMNS} FROM source_status")}  # noqa: S608

    def save_source_status(
        self, status: SourceStatus, expect_version: int, *, poll: SourcePoll | None = None,
        alert: SourceAlert | None = None,
    ) -> bool:
        values = (status.status, status.failures, _opt(status.failing_since), status.last_error,
                  _opt(status.last_poll_at), _opt(status.last_success_at), _opt(status.last_item_at),
                  _ts(status.tracked_since), _opt(status.incident_since), expect_version + 1)

        def work(cur: psycopg.Cursor) -> bool:
            if expect_version == 0:
                cur.execute(f"""INSERT INTO source_status ({_STATUS_COLUMNS}) VALUES ({', '.join(['%s'] * 11)})
                                ON CONFLICT (source) DO NOTHING""", (status.source, *values))  # noqa: S608
            else:
                cur.execute(f"UPDATE source_status SET {_STATUS_SET} WHERE source=%s AND version=%s",  # noqa: S608
                            (*values, status.source, expect_version))
            if cur.rowcount != 1:
                return False
            if poll is not None:
                cur.execute("INSERT INTO source_polls VALUES (%s, %s, %s, %s)",
                            (status.source, _ts(poll.at), poll.new_items, poll.error))
            if alert is not None:
                cur.execute("""INSERT INTO source_alerts (id, source, kind, detail, failures, since, last_item_at,
                               created_at, state) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'new')
                               ON CONFLICT (id) DO NOTHING""",
                            (alert.id, alert.source, alert.kind, alert.detail, alert.failures, _opt(alert.since),
                             _opt(alert.last_item_at), _ts(alert.created_at)))  # fmt: skip
            return True

        return self._run(work, "save source status")

    def items_since(self, since: datetime) -> dict[str, int]:
        rows = self._read("SELECT source, SUM(new_items) FROM source_polls WHERE at > %s GROUP BY source",
                          (_ts(since),))
        return {r[0]: int(r[1] or 0) for r in rows}

    def source_alerts_to_send(self) -> list[SourceAlert]:
        return self._source_alerts("WHERE state IN ('new', 'pending') ORDER BY created_at, id", ())

    def claim_source_alert(self, alert_id: str, owner: str, now: datetime, lease: timedelta) -> bool:
        return self._write(
            """UPDATE source_alerts SET state='pending', claimed_by=%s, claimed_at=%s WHERE id=%s AND (state='new'
               OR (state='pending' AND (claimed_by=%s OR claimed_by IS NULL OR claimed_at < %s)))""",
            (owner, _ts(now), alert_id, owner, _ts(now - lease)),
        ) == 1

    def mark_source_alert_sent(self, alert_id: str, ref: str, now: datetime) -> None:
        self._write("UPDATE source_alerts SET state='sent', ref=%s, sent_at=%s WHERE id=%s", (ref, _ts(now), alert_id))

    def source_alerts_between(self, after: datetime | None, until: datetime) -> list[SourceAlert]:
        return self._source_alerts("WHERE created_at > %s AND created_at <= %s ORDER BY created_at, id",
                                   (_ts(after) if after else 0.0, _ts(until)))

    def _source_alerts(self, where: str, params: Sequence[Any]) -> list[SourceAlert]:
        return [_alert(r) for r in self._read(f"SELECT {_ALERT_COLUMNS} FROM source_alerts {where}", params)]  # noqa: S608

    def outbox_pending(self) -> dict[str, int]:
        row = self._read("""SELECT (SELECT COUNT(*) FROM alerts WHERE state='pending'),
                                   (SELECT COUNT(*) FROM digests WHERE state='pending'),
                                   (SELECT COUNT(*) FROM source_alerts WHERE state IN ('new', 'pending'))""")[0]
        return {"alert": int(row[0]), "digest": int(row[1]), "source_alert": int(row[2])}

    def prune_issue_17(self, older_than: timedelta, now: datetime) -> int:
        cutoff = _ts(now - older_than)

        def work(cur: psycopg.Cursor) -> int:
            removed = cur.execute("DELETE FROM source_polls WHERE at < %s", (cutoff,)).rowcount
            removed += cur.execute("DELETE FROM source_alerts WHERE state='sent' AND created_at < %s",
                                   (cutoff,)).rowcount
            removed += cur.execute("""DELETE FROM story_copies c WHERE recorded_at < %s AND NOT EXISTS
                                      (SELECT 1 FROM story_articles s WHERE s.article_id = c.article_id)""",
                                   (cutoff,)).rowcount  # fmt: skip
            return int(removed)

        return self._run(work, "prune issue 17 tables")

    # -- issue 19: API quotas and URL claims -------------------------------------------------------------
    def spend_quota(self, key: str, day: str, calls: int, budget: int) -> int | None:
        def work(cur: psycopg.Cursor) -> int | None:
            cur.execute("INSERT INTO quotas VALUES (%s, %s, 0) ON CONFLICT DO NOTHING", (key, day))
            row = cur.execute(  # the row lock makes concurrent spenders queue; each sees the other's total
                "UPDATE quotas SET used=used+%s WHERE key=%s AND day=%s AND used+%s<=%s RETURNING used",
                (calls, key, day, calls, budget),
            ).fetchone()
            return int(row[0]) if row else None

        return self._run(work, "spend quota")

    def quota_used(self, key: str, day: str) -> int:
        rows = self._read("SELECT used FROM quotas WHERE key=%s AND day=%s", (key, day))
        return int(rows[0][0]) if rows else 0

    def claim_urls(self, claims: Sequence[tuple[str, Sequence[str]]], now: datetime) -> list[str]:
        # Three statements for the whole batch (a poll's entries), not three per claim: the claims are decided in
        # order against what is recorded and what the claims before them recorded, as base.StateStore says.
        urls = sorted({url for _, own in claims for url in own})

        def recorded(cur: psycopg.Cursor) -> dict[str, tuple[float, str]]:
            rows = cur.execute("SELECT url, claimed_at, item_id FROM url_claims WHERE url = ANY(%s)", (urls,))
            return {str(url): (float(at), str(item)) for url, at, item in rows.fetchall()}

        def first(claimed: dict[str, tuple[float, str]], item_id: str, own: Sequence[str]) -> str:
            held = [(claimed[url][0], url) for url in own if url in claimed]
            return claimed[min(held)[1]][1] if held else item_id

        def work(cur: psycopg.Cursor) -> list[str]:
            if not urls:
                return [item_id for item_id, _ in claims]
            claimed, stamp, rows = recorded(cur), _ts(now), []
            for item_id, own in claims:
                owner = first(claimed, item_id, own)
                for url in own:
                    if url not in claimed:
                        claimed[url] = (stamp, owner)
                        rows.append((url, owner, stamp))
            if rows:
                cur.executemany("INSERT INTO url_claims VALUES (%s, %s, %s) ON CONFLICT DO NOTHING", rows)
            # Read back: a claimer that raced us and won is visible now (our INSERT waited for its commit).
            claimed = recorded(cur)
            return [first(claimed, item_id, own) for item_id, own in claims]

        return self._run(work, "claim urls")

    def poll_state(self, source: str) -> PollState | None:
        rows = self._read("SELECT poll_interval, rate, failures, last_poll_at FROM poll_state WHERE source=%s",
                          (source,))
        return PollState(float(rows[0][0]), rows[0][1], int(rows[0][2]), rows[0][3]) if rows else None

    def save_poll_state(self, source: str, state: PollState) -> None:
        self._write("""INSERT INTO poll_state VALUES (%s, %s, %s, %s, %s) ON CONFLICT (source) DO UPDATE SET
                       poll_interval=excluded.poll_interval, rate=excluded.rate, failures=excluded.failures,
                       last_poll_at=excluded.last_poll_at""",
                    (source, state.interval, state.rate, state.failures, state.last_poll_at))  # fmt: skip

    # == issue 18: quiet hours (held alerts, roll-ups), digest claims and parts, first polls, trend ============
    # Semantics in base.StateStore. Claims are conditional UPDATEs (WHERE state='held', WHERE claimed_at < ...)
    # or INSERT ... ON CONFLICT DO NOTHING: under READ COMMITTED the second of two concurrent claimers waits for
    # the first's row lock, re-checks the condition on the committed row and changes nothing.
    def hold_alert(self, story_id: str, channel: str, outlets: int, now: datetime) -> bool:
        return self._write("""INSERT INTO alerts VALUES (%s, %s, NULL, %s, 'held', %s)
                              ON CONFLICT (story_id, channel) DO NOTHING""",
                           (story_id, channel, outlets, _ts(now))) == 1  # fmt: skip

    def held_alerts(self, channel: str | None = None) -> list[tuple[str, str, datetime]]:
        sql = "SELECT story_id, channel, updated_at FROM alerts WHERE state='held'"
        rows = self._read(sql + (" AND channel=%s" if channel else "") + " ORDER BY updated_at, story_id",
                          (channel,) if channel else ())
        return [(r[0], r[1], _dt(r[2]) or datetime.now(timezone.utc)) for r in rows]

    def drop_alert(self, story_id: str, channel: str) -> None:
        self._write("DELETE FROM alerts WHERE story_id=%s AND channel=%s AND state='held'", (story_id, channel))

    def claim_held(self, channel: str, story_ids: Sequence[str], ref: str, now: datetime) -> list[str]:
        return self._run(lambda cur: _claim_held(cur, channel, story_ids, ref, now), "claim held alerts")

    def take_over_releases(self, ref: str, stale_before: datetime, now: datetime) -> list[tuple[str, str]]:
        rows = self._run(lambda cur: cur.execute(
            """UPDATE alerts SET updated_at=%s WHERE state='pending' AND ref=%s AND updated_at < %s
               RETURNING story_id, channel""", (_ts(now), ref, _ts(stale_before))).fetchall(), "take over releases")
        return sorted((str(r[0]), str(r[1])) for r in rows)

    def begin_rollup(self, rollup_id: str, channel: str, story_ids: Sequence[str], now: datetime) -> list[str]:
        def work(cur: psycopg.Cursor) -> list[str]:
            claimed = _claim_held(cur, channel, story_ids, f"rollup:{rollup_id}", now)
            if claimed:
                cur.execute("INSERT INTO rollups VALUES (%s, %s, %s, 'pending', NULL, %s)",
                            (rollup_id, channel, json.dumps(claimed), _ts(now)))  # fmt: skip
            return claimed

        return self._run(work, "begin roll-up")

    def take_over_rollups(self, stale_before: datetime, now: datetime) -> list[tuple[str, str, list[str]]]:
        rows = self._run(lambda cur: cur.execute(
            """UPDATE rollups SET created_at=%s WHERE state='pending' AND created_at < %s
               RETURNING id, channel, story_ids""", (_ts(now), _ts(stale_before))).fetchall(), "take over roll-ups")
        return sorted((str(r[0]), str(r[1]), list(json.loads(r[2]))) for r in rows)

    def pending_rollups(self) -> list[tuple[str, str, list[str]]]:
        rows = self._read("SELECT id, channel, story_ids FROM rollups WHERE state='pending' ORDER BY created_at, id")
        return [(str(r[0]), str(r[1]), list(json.loads(r[2]))) for r in rows]

    def finish_rollup(self, rollup_id: str, ref: str, outlets: dict[str, int]) -> None:
        def work(cur: psycopg.Cursor) -> None:
            row = cur.execute("UPDATE rollups SET state='sent', ref=%s WHERE id=%s RETURNING channel",
                              (ref, rollup_id)).fetchone()  # fmt: skip
            if row is None:
                return
            cur.executemany("""UPDATE alerts SET state='sent', ref=%s, outlets=%s, updated_at=EXTRACT(EPOCH FROM now())
                               WHERE story_id=%s AND channel=%s""",
                            [(ref, n, sid, row[0]) for sid, n in outlets.items()])  # fmt: skip

        self._run(work, "finish roll-up")

    def rollup_stories(self, ref: str) -> list[str] | None:
        rows = self._read("SELECT story_ids FROM rollups WHERE ref=%s AND state='sent'", (ref,))
        return list(json.loads(rows[0][0])) if rows else None

    def claim_digest(self, day: str, recipient: str, owner: str, cutoff: datetime, now: datetime,
                     stale_before: datetime) -> datetime | None:  # fmt: skip
        def work(cur: psycopg.Cursor) -> datetime | None:
            if cur.execute("SELECT 1 FROM digests WHERE day=%s AND recipient=%s AND state='sent'",
                           (day, recipient)).fetchone():  # fmt: skip
                return None
            if cur.execute("""INSERT INTO digest_claims VALUES (%s, %s, %s, %s, %s)
                              ON CONFLICT (day, recipient) DO NOTHING""",
                           (day, recipient, owner, _ts(now), _ts(cutoff))).rowcount == 1:  # fmt: skip
                return cutoff
            row = cur.execute("""UPDATE digest_claims SET owner=%s, claimed_at=%s WHERE day=%s AND recipient=%s
                                 AND (owner=%s OR claimed_at < %s) RETURNING cutoff""",
                              (owner, _ts(now), day, recipient, owner, _ts(stale_before))).fetchone()  # fmt: skip
            return _dt(row[0]) if row else None

        return self._run(work, "claim digest")

    def release_digest(self, day: str, recipient: str, owner: str) -> None:
        self._write("DELETE FROM digest_claims WHERE day=%s AND recipient=%s AND owner=%s", (day, recipient, owner))

    def digest_part(self, day: str, recipient: str, part: str) -> tuple[str, str | None] | None:
        rows = self._read("SELECT state, ref FROM digest_parts WHERE day=%s AND recipient=%s AND part=%s",
                          (day, recipient, part))
        return (rows[0][0], rows[0][1]) if rows else None

    def record_digest_part(self, day: str, recipient: str, part: str, state: str, ref: str | None) -> None:
        self._write("""INSERT INTO digest_parts VALUES (%s, %s, %s, %s, %s) ON CONFLICT (day, recipient, part)
                       DO UPDATE SET state=excluded.state, ref=excluded.ref""", (day, recipient, part, state, ref))

    def first_poll(self, source: str) -> datetime | None:
        rows = self._read("SELECT first_polled_at FROM first_polls WHERE source=%s", (source,))
        return _dt(rows[0][0]) if rows else None

    def record_first_poll(self, source: str, started: datetime) -> None:
        self._write("INSERT INTO first_polls VALUES (%s, %s) ON CONFLICT (source) DO NOTHING", (source, _ts(started)))

    def stories_touched_since(self, after: datetime) -> list[Story]:
        rows = self._read("SELECT payload FROM stories WHERE relevant_at IS NOT NULL AND updated_at >= %s",
                          (_ts(after),))
        return [events.decode(r[0]) for r in rows]


_UPSERT_COPY = """INSERT INTO story_copies VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (article_id) DO UPDATE
    SET outlet=excluded.outlet, url=excluded.url, title=excluded.title, published_at=excluded.published_at,
    fetched_at=excluded.fetched_at, recorded_at=excluded.recorded_at"""


def _copy_row(article: Article, now: datetime) -> tuple[Any, ...]:
    return (article.id, article.outlet, article.url, article.title, _opt(article.published_at),
            _opt(article.fetched_at), _ts(now))  # fmt: skip


def _record_copy(cur: psycopg.Cursor, article: Article, now: datetime) -> None:
    """One StoryWrite.copy inside the caller's transaction (the latest sighting's fields win)."""
    cur.execute(_UPSERT_COPY, _copy_row(article, now))


_SCHEMA_ISSUE_17 = """
CREATE TABLE IF NOT EXISTS story_copies (
    article_id TEXT PRIMARY KEY, outlet TEXT NOT NULL, url TEXT NOT NULL, title TEXT NOT NULL,
    published_at DOUBLE PRECISION, fetched_at DOUBLE PRECISION, recorded_at DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS stories_by_first_seen ON stories (first_seen);
CREATE INDEX IF NOT EXISTS story_articles_by_article ON story_articles (article_id);
CREATE TABLE IF NOT EXISTS source_status (
    source TEXT PRIMARY KEY, status TEXT NOT NULL, failures INTEGER NOT NULL, failing_since DOUBLE PRECISION,
    last_error TEXT, last_poll_at DOUBLE PRECISION, last_success_at DOUBLE PRECISION,
    last_item_at DOUBLE PRECISION, tracked_since DOUBLE PRECISION NOT NULL, incident_since DOUBLE PRECISION,
    version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS source_polls (
    source TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, new_items INTEGER NOT NULL, error TEXT);
CREATE INDEX IF NOT EXISTS source_polls_by_time ON source_polls (at);
CREATE TABLE IF NOT EXISTS source_alerts (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL, failures INTEGER NOT NULL,
    since DOUBLE PRECISION, last_item_at DOUBLE PRECISION, created_at DOUBLE PRECISION NOT NULL,
    state TEXT NOT NULL, ref TEXT, sent_at DOUBLE PRECISION, claimed_by TEXT, claimed_at DOUBLE PRECISION);
CREATE INDEX IF NOT EXISTS source_alerts_by_state ON source_alerts (state);
CREATE INDEX IF NOT EXISTS source_alerts_by_time ON source_alerts (created_at);
"""
_STATUS_COLUMNS = ("source, status, failures, failing_since, last_error, last_poll_at, last_success_at, "
                   "last_item_at, tracked_since, incident_since, version")
_STATUS_SET = ", ".join(f"{c.strip()}=%s" for c in _STATUS_COLUMNS.split(",")[1:])
_ALERT_COLUMNS = "id, source, kind, detail, failures, since, last_item_at, created_at, state, ref"
_EPOCH = datetime.fromtimestamp(0, tz=timezone.utc)


def _opt(value: datetime | None) -> float | None:
    return None if value is None else _ts(value)


def _status(row: tuple[Any, ...]) -> SourceStatus:
    return SourceStatus(row[0], row[1], int(row[2]), _dt(row[3]), row[4], _dt(row[5]), _dt(row[6]), _dt(row[7]),
                        _dt(row[8]) or _EPOCH, _dt(row[9]), int(row[10]))


def _alert(row: tuple[Any, ...]) -> SourceAlert:
    return SourceAlert(row[0], row[1], row[2], row[3], int(row[4]), _dt(row[5]), _dt(row[6]), _dt(row[7]) or _EPOCH,
                       row[8], row[9])


def _claim_held(cur: psycopg.Cursor, channel: str, story_ids: Sequence[str], ref: str, now: datetime) -> list[str]:
    """The conditional UPDATE of claim_held, inside the caller's transaction; the ids it changed, in order."""
    wanted = list(dict.fromkeys(story_ids))
    rows = cur.execute("""UPDATE alerts SET state='pending', ref=%s, updated_at=%s
                          WHERE channel=%s AND state='held' AND story_id = ANY(%s) RETURNING story_id""",
                       (ref, _ts(now), channel, wanted)).fetchall()  # fmt: skip
    got = {str(r[0]) for r in rows}
    return [s for s in wanted if s in got]


# issue 18: tables of the block above (created with the others when the store opens).
_SCHEMA_18 = """
CREATE TABLE IF NOT EXISTS rollups (
    id TEXT PRIMARY KEY, channel TEXT NOT NULL, story_ids TEXT NOT NULL, state TEXT NOT NULL, ref TEXT,
    created_at DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS rollups_by_ref ON rollups (ref);
CREATE TABLE IF NOT EXISTS digest_claims (
    day TEXT NOT NULL, recipient TEXT NOT NULL, owner TEXT NOT NULL, claimed_at DOUBLE PRECISION NOT NULL,
    cutoff DOUBLE PRECISION NOT NULL, PRIMARY KEY (day, recipient));
CREATE TABLE IF NOT EXISTS digest_parts (
    day TEXT NOT NULL, recipient TEXT NOT NULL, part TEXT NOT NULL, state TEXT NOT NULL, ref TEXT,
    PRIMARY KEY (day, recipient, part));
CREATE TABLE IF NOT EXISTS first_polls (source TEXT PRIMARY KEY, first_polled_at DOUBLE PRECISION NOT NULL);
"""
