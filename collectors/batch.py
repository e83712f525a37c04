"""What one poll of a source produced, and the state to commit once its items are safely on the bus.

Seen ids and HTTP validators are written by ``finalize`` only after the runner has published the items
durably: a crash in between makes the next poll fetch and emit the same items again (at-least-once, nothing
lost), and the grouping stage downstream absorbs the repeat. The reading side lives here too: the
conditional GET of a source's own URL and the seen check, which every collector does the same way.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from collectors.fetch import Fetcher, FetchResult
from newsradar.errors import NewsradarError
from newsradar.events import RawItem
from newsradar.store import StateStore

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
    # Answers of ``ask_seen``: the ids asked at once, and those of them seen before.
    _asked: set[str] = field(default_factory=set, init=False, repr=False)
    _seen: set[str] = field(default_factory=set, init=False, repr=False)

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

    def ask_seen(self, store: StateStore, item_ids: Sequence[str]) -> None:
        """Ask the store about a poll's ids at once; ``seen_before`` then answers them without a round trip each."""
        fresh = [i for i in item_ids if i not in self._asked]
        if fresh:
            self._seen |= store.seen_among(self.source, fresh)
            self._asked.update(fresh)

    def seen_before(self, store: StateStore, item_id: str) -> bool:
        """True, counted in ``skipped_seen``, when an earlier poll already emitted ``item_id``."""
        seen = item_id in self._seen if item_id in self._asked else store.is_seen(self.source, item_id)
        if seen:
            self.skipped_seen += 1
        return seen

    def finalize(self, store: StateStore, now: datetime) -> None:
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


def fetch_if_changed(
    fetcher: Fetcher,
    store: StateStore,
    batch: Batch,
    url: str,
    *,
    allowed_hosts: Sequence[str] = (),
    check_robots: bool = False,
) -> FetchResult | None:
    """Conditional GET of a source's own ``url`` with the validators stored for it (the start of a poll).

    Returns None, with ``batch.not_modified`` set, when the server answered 304. Raises TransientError /
    PermanentError (logged here once) when the fetch fails: the runner backs the source off.
    """
    etag, last_modified = store.validators(batch.source, url)
    try:
        result = fetcher.get(
            url,
            source=batch.source,
            etag=etag,
            last_modified=last_modified,
            allowed_hosts=allowed_hosts,
            check_robots=check_robots,
        )
    except NewsradarError as exc:
        logger.warning("%s", exc)
        raise
    if result.not_modified:
        batch.not_modified = True
        return None
    return result
