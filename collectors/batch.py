"""What one poll of a source produced, and the state to commit once its items are safely on the bus.

Seen ids and HTTP validators are written by ``finalize`` only after the runner has published the items
durably: a crash in between makes the next poll fetch and emit the same items again (at-least-once, nothing
lost), and the grouping stage downstream absorbs the repeat.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from newsradar.events import RawItem
from newsradar.store import Store

logger = logging.getLogger(__name__)


@dataclass
class Batch:
    """Items from one poll of ``source`` plus counters; ``dropped`` counts by reason (e.g. 'duplicate')."""

    source: str
    items: list[RawItem] = field(default_factory=list)
    not_modified: bool = False
    errors: list[str] = field(default_factory=list)
    received: int = 0
    skipped_seen: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    # Entries kept despite a problem, by problem (e.g. 'undated'): counted, not errors.
    flagged: Counter[str] = field(default_factory=Counter)
    # Committed by finalize(): validators per fetched URL, and ids to remember without emitting them
    # (article pages that failed for good, so they are not retried every poll).
    validators: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    settled_ids: list[str] = field(default_factory=list)

    @property
    def emitted(self) -> int:
        return len(self.items)

    def error(self, message: str, *, logged: bool = False) -> None:
        """Record and log a problem that did not stop the poll (``logged``: the warning was already logged)."""
        if not logged:
            logger.warning("%s", message)
        self.errors.append(message)

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] += n

    def flag(self, problem: str, n: int = 1) -> None:
        self.flagged[problem] += n

    def finalize(self, store: Store, now: datetime) -> None:
        """Mark the items seen and save the new validators. Call ONLY after the items are durably published.

        Raises PermanentError if the store cannot be written; the items will then be emitted again next poll.
        """
        ids = [item.id for item in self.items] + self.settled_ids
        if ids:
            store.mark_seen(self.source, ids, now)
        for url, (etag, last_modified) in self.validators.items():
            store.set_validators(self.source, url, etag, last_modified)

    def summary(self) -> str:
        """One log line: received, emitted, skipped and dropped counts."""
        dropped = ", ".join(f"{k}={v}" for k, v in sorted(self.dropped.items())) or "none"
        state = "not modified" if self.not_modified else f"received {self.received}, emitted {self.emitted}"
        return (
            f"{self.source}: {state}, seen {self.skipped_seen}, dropped {dropped}, errors {len(self.errors)}"
        )
