"""The durable record of grouping decisions: one SQLite row per article, replayed on start.

Each row holds the article id, its story id, its time and its signature (signature.encode), so
reopening rebuilds exactly the index the process had. When an article shows that stories begun
apart are one event, the absorbed stories' rows are relabelled and the merge is recorded with the
article that caused it, in the same transaction as that article's row, so a redelivery reports the
same merge again. Writes are transactions in WAL mode with synchronous=FULL: once ``insert`` returns,
the decision survives kill -9 and power loss. Rows older than the window are deleted with the index.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from newsradar.errors import PermanentError, TransientError
from processors.grouping import signature

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS grouped (
    seq INTEGER PRIMARY KEY, article_id TEXT NOT NULL UNIQUE, story_id TEXT NOT NULL,
    t REAL NOT NULL, signature BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS grouped_by_time ON grouped (t);
CREATE TABLE IF NOT EXISTS grouping_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS merged (
    absorbed TEXT PRIMARY KEY, survivor TEXT NOT NULL, article_id TEXT NOT NULL, t REAL NOT NULL);
CREATE INDEX IF NOT EXISTS merged_by_article ON merged (article_id);
CREATE TABLE IF NOT EXISTS roundups (story_id TEXT PRIMARY KEY, t REAL NOT NULL);
"""


class Row(NamedTuple):
    article_id: str
    story_id: str
    signature: bytes  # signature.encode


class Record:
    """The grouping tables in a SQLite file."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)
            self._check_version(path)
        except sqlite3.Error as exc:
            raise PermanentError(f"grouping index {path}: cannot open SQLite file: {exc}") from exc
        self.path = path

    def _check_version(self, path: Path) -> None:
        """Signatures of another version cannot be compared: their rows keep answering ``story_of`` (a
        redelivered article keeps its story) but are not replayed into the index."""
        row = self._conn.execute("SELECT value FROM grouping_meta WHERE key='signature_version'").fetchone()
        version = str(signature.VERSION)
        if row is None:
            self._conn.execute("INSERT INTO grouping_meta VALUES ('signature_version', ?)", (version,))
        elif row[0] != version:
            log.warning("grouping index %s has signatures of version %s (expected %s): their decisions are kept, "
                        "their articles are not compared with new ones", path, row[0], version)  # fmt: skip
            self._conn.execute("UPDATE grouped SET signature = x''")
            self._conn.execute("UPDATE grouping_meta SET value=? WHERE key='signature_version'", (version,))

    def rows(self) -> Iterator[Row]:
        """Every stored decision with a signature, in decision order (for rebuilding the index)."""
        cur = self._conn.execute("SELECT article_id, story_id, signature FROM grouped ORDER BY seq")
        for article_id, story_id, blob in cur:
            if blob:
                yield Row(str(article_id), str(story_id), bytes(blob))

    def insert(self, article_id: str, story_id: str, blob: bytes, absorbed: tuple[str, ...] = (),
               roundup: bool = False) -> None:  # fmt: skip
        """Record one decision (``blob``: the article's encoded signature), and the stories it merged into
        ``story_id``; durable when this returns.

        ``roundup``: the article is a round-up that started ``story_id``. Raises TransientError when the
        file is busy or the disk is full (retry later), PermanentError when it cannot be written at all.
        """
        try:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                t = signature.time_of(blob)
                self._conn.execute(
                    "INSERT OR IGNORE INTO grouped (article_id, story_id, t, signature) VALUES (?, ?, ?, ?)",
                    (article_id, story_id, t, blob),
                )
                if roundup:
                    self._conn.execute("INSERT OR IGNORE INTO roundups VALUES (?, ?)", (story_id, t))
                for other in absorbed:
                    self._conn.execute("UPDATE grouped SET story_id=? WHERE story_id=?", (story_id, other))
                    self._conn.execute("UPDATE merged SET survivor=? WHERE survivor=?", (story_id, other))
                    self._conn.execute(
                        "INSERT OR REPLACE INTO merged VALUES (?, ?, ?, ?)", (other, story_id, article_id, t)
                    )
        except sqlite3.OperationalError as exc:
            raise TransientError(f"grouping index {self.path}: cannot record article {article_id}: {exc}") from exc
        except sqlite3.Error as exc:
            raise PermanentError(f"grouping index {self.path}: cannot record article {article_id}: {exc}") from exc

    def merged_by(self, article_id: str) -> tuple[str, ...]:
        """The stories that the decision on ``article_id`` merged into its own (for redeliveries)."""
        rows = self._conn.execute("SELECT absorbed FROM merged WHERE article_id=? ORDER BY absorbed", (article_id,))
        return tuple(str(r[0]) for r in rows)

    def roundups(self) -> set[str]:
        """The stories in the window that a round-up started."""
        return {str(r[0]) for r in self._conn.execute("SELECT story_id FROM roundups")}

    def survivors(self) -> dict[str, str]:
        """Every recorded merge still in the window: absorbed story id -> the story it is now part of."""
        return {str(a): str(b) for a, b in self._conn.execute("SELECT absorbed, survivor FROM merged")}

    def story_of(self, article_id: str) -> str | None:
        row = self._conn.execute("SELECT story_id FROM grouped WHERE article_id=?", (article_id,)).fetchone()
        return None if row is None else str(row[0])

    def evict(self, horizon: float) -> int:
        """Delete decisions older than ``horizon`` (seconds); returns how many."""
        self._conn.execute("DELETE FROM merged WHERE t < ?", (horizon,))
        self._conn.execute("DELETE FROM roundups WHERE t < ?", (horizon,))
        return self._conn.execute("DELETE FROM grouped WHERE t < ?", (horizon,)).rowcount

    def close(self) -> None:
        self._conn.close()
