"""The durable record of grouping decisions: one row per article in the state store, replayed on start.

Each row holds the article id, its story id, its time and its signature (signature.encode), so
reopening rebuilds exactly the index the process had, on this host or on a stand-by's (the store is
SQLite or PostgreSQL: newsradar.store). When an article shows that stories begun apart are one event,
the absorbed stories' rows are relabelled and the merge is recorded with the article that caused it,
in the same transaction as that article's row, so a redelivery reports the same merge again.

Decisions are written one transaction each (``insert``: durable when it returns), or held and written
by the caller with its own batch (``hold`` then ``take``: the grouping stage commits a whole delivered
batch, decisions and story records together, in one transaction). Rows older than the window are
deleted with the index.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from newsradar.errors import StateError
from newsradar.store import GroupingDecision, GroupingRow, SqliteStore, StateStore
from processors.grouping import signature

log = logging.getLogger(__name__)


class Record:
    """The grouping decisions in a state store.

    Given a path, the record is a SQLite file of its own, for a grouper used alone, which writes as
    ``writer`` (it claims the file). Given a store, the grouping stage writes: it holds the decisions
    and commits them with its batch under its own claim (``hold``, ``take``).
    """

    def __init__(self, store: StateStore | Path, writer: str = "grouper-alone") -> None:
        self._owned = not isinstance(store, StateStore)
        self.store: StateStore = SqliteStore(store) if isinstance(store, Path) else store
        self.path = self.store.name
        self.writer = writer
        self._held: list[GroupingDecision] | None = None
        if self._owned:
            self.store.claim_grouping(writer)
        if self.store.grouping_signature_version(str(signature.VERSION)):
            log.warning("grouping index %s had signatures of another version: their decisions are kept, their "
                        "articles are not compared with new ones", self.path)  # fmt: skip

    def rows(self) -> Iterator[GroupingRow]:
        """Every stored decision with a signature, in decision order (for rebuilding the index)."""
        return self.store.grouping_rows()

    def hold(self) -> None:
        """From now on, keep decisions until ``take`` instead of writing each one."""
        if self._held is None:
            self._held = []

    def take(self) -> list[GroupingDecision]:
        """The decisions held since the last ``take`` (for the caller to write with its batch)."""
        held, self._held = self._held or [], ([] if self._held is not None else None)
        return held

    def hold_again(self, decisions: list[GroupingDecision]) -> None:
        """Hold ``decisions`` (taken, then not written: the caller's batch failed) before any held since."""
        self._held = decisions + (self._held or [])

    def insert(self, decision: GroupingDecision) -> None:
        """Record one decision: durable when this returns, unless decisions are held (``hold``)."""
        if self._held is not None:
            self._held.append(decision)
            return
        if not self.store.commit_grouping(self.writer, [decision], [], datetime.now(timezone.utc)):
            raise StateError(f"grouping index {self.path}: another grouper has claimed it since")

    def merged_by(self, article_id: str) -> tuple[str, ...]:
        """The stories that the decision on ``article_id`` merged into its own (for redeliveries)."""
        held = [d.absorbed for d in self._held or () if d.article_id == article_id]
        return held[-1] if held else self.store.grouping_merged_by(article_id)

    def roundups(self) -> set[str]:
        """The stories in the window that a round-up started."""
        return self.store.grouping_roundups()

    def survivors(self) -> dict[str, str]:
        """Every recorded merge still in the window: absorbed story id -> the story it is now part of."""
        return self.store.grouping_survivors()

    def story_of(self, article_id: str) -> str | None:
        return self.store.grouping_story_of(article_id)

    def evict(self, horizon: float) -> int:
        """Delete decisions older than ``horizon`` (seconds); returns how many."""
        return self.store.grouping_evict(horizon)

    def close(self) -> None:
        if self._owned:
            self.store.close()
