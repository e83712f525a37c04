"""The grouper: decides the story of each article once, and remembers it.

``place`` runs one article through the package's stages (features, candidates, evidence, decision)
and writes the decision to the record before it returns, so a restart or a redelivered event (the
bus is at-least-once) yields the same story ids and the same merges. ``resolve`` maps any story id
ever handed out to the story it is part of now.
"""

from __future__ import annotations

import logging
import math
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import NamedTuple

from newsradar.errors import ConfigError
from newsradar.events import Article
from newsradar.settings import GroupingSettings
from newsradar.store import GroupingDecision, StateStore
from processors.grouping import candidates, decision, evidence, passages, signature
from processors.grouping.evidence import Evidence
from processors.grouping.features import Features, extract
from processors.grouping.index import Index, whole_seconds
from processors.grouping.record import Record

log = logging.getLogger(__name__)


class Placement(NamedTuple):
    """Where an article went: its story, and the stories that this decision merged into it."""

    story_id: str
    absorbed: tuple[str, ...] = ()
    known: bool = False  # decided before (a redelivery): the same answer again, nothing changed
    started: bool = False  # this article started its story (no record of it exists anywhere yet)


def _id_hash(article_id: str) -> int:
    """The 64-bit key of an article id in the index's id table (in memory only: replayed from the record)."""
    return hash(article_id) & 0xFFFF_FFFF_FFFF_FFFF


def _time_of(article: Article) -> int:
    """When an article appeared, in the index's whole seconds (its published time, else when it was fetched)."""
    when = article.published_at or article.fetched_at or datetime.now(timezone.utc)
    stamp = when.timestamp()
    t = whole_seconds(stamp)
    if t != math.floor(stamp):
        log.warning("article %s from source %r: time %s out of range; grouped at %d", article.id, article.source,
                    when.isoformat(), t)  # fmt: skip
    return t


def _features(article: Article) -> Features:
    try:
        return extract(article.title or "", article.text or "", article.outlet or "")
    except (ValueError, UnicodeError) as exc:  # defensive: odd text never stops grouping
        log.error("article %s from source %r: features unreadable (%s); grouped on nothing",
                  article.id, article.source, exc)  # fmt: skip
        return Features.empty()


class Grouper:
    """Decides which story each article belongs to (membership only; story records live elsewhere)."""

    def __init__(self, window: timedelta = timedelta(days=7), path: Path | None = None, *,
                 store: StateStore | None = None, writer: str = "grouper-alone") -> None:  # fmt: skip
        """``path``: a SQLite file (or a folder for one) of this grouper's own; ``store``: the pipeline's state
        store, written by the grouping stage as ``writer`` in batches (see ``held``); neither: memory only."""
        if window <= timedelta(0):
            raise ConfigError(f"grouping.window_days: must be positive, got {window}")
        self.window = window
        self._index = Index(window.total_seconds())
        self._lock = threading.Lock()
        self._record: Record | None = None
        self._named: dict[str, int] = {}  # story id -> story number, for ``record``
        self._merged: dict[str, str] = {}  # absorbed story id -> the story it was merged into
        # Recorded articles missing from the index (blank or unreadable signature): the only ones whose earlier
        # decision the index cannot answer for. Every other recorded decision in the window is in the index,
        # and the record evicts with the index, so a new article costs no lookup in the record.
        self._unindexed: set[str] = set()
        if store is not None:
            self._record = Record(store, writer)
            self._record.hold()
            self._replay()
        elif path is not None:
            path = Path(path)
            if path.is_dir():
                path = path / "grouping.sqlite"
            self._record = Record(path, writer)
            self._replay()

    @classmethod
    def from_settings(cls, grouping: GroupingSettings, path: Path | None) -> Grouper:
        """A grouper with the configured window; ``path`` None keeps the index in memory only."""
        return cls(window=timedelta(days=grouping.window_days), path=path)

    def hold_again(self, decisions: list[GroupingDecision]) -> None:
        """Give back decisions taken by ``held`` that the caller could not write (it will try again)."""
        with self._lock:
            if self._record is not None:
                self._record.hold_again(decisions)

    def held(self) -> list[GroupingDecision]:
        """The decisions made since the last call, not yet written (with a ``store``: the caller writes them
        with its batch, in one transaction, before it acknowledges the articles)."""
        with self._lock:
            return self._record.take() if self._record is not None else []

    def _replay(self) -> None:
        assert self._record is not None
        stories: dict[str, int] = {}
        count = 0
        for row in self._record.rows():
            if not row.signature:
                self._unindexed.add(row.article_id)
                continue
            story = stories.get(row.story_id)
            if story is None:
                story = stories[row.story_id] = self._index.new_story(row.story_id)
            try:
                self._index.add_encoded(_id_hash(row.article_id), row.signature, story)
            except (ValueError, OverflowError) as exc:
                log.error("grouping index %s: unreadable signature of article %s (%s); skipped",
                          self._record.path, row.article_id, exc)  # fmt: skip
                self._unindexed.add(row.article_id)
                continue
            count += 1
        self._merged = self._record.survivors()
        self._index.roundups = {stories[s] for s in self._record.roundups() if s in stories}
        self._compact(force=True)
        log.info("grouping index %s: %d articles in %d stories reloaded", self._record.path, count, len(stories))

    def assign(self, article: Article) -> str:
        """The story id of ``article``: an existing story it copies, or a new one it starts.

        Called once per article by the grouping stage, possibly again for the same article after a
        redelivery: the answer is then the same and nothing changes. With a path, the decision is
        durable when this returns; if it cannot be written, TransientError (busy, disk full) or
        PermanentError is raised and nothing is remembered, so the delivery can be retried.
        """
        return self.place(article).story_id

    def place(self, article: Article) -> Placement:
        """Like ``assign``, and also the ids of the stories this article's decision merged into its story.

        A redelivery gets the same merges back (from the record; an in-memory grouper reports them only
        the first time).
        """
        with self._lock:
            if not article.id:
                log.error("article from source %r (url %r) has an empty id; grouped as a new story",
                          article.source, article.url)  # fmt: skip
            id_hash = _id_hash(article.id)
            slot = self._index.lookup_id(id_hash)
            if slot is not None:
                return Placement(self._index.story_id(self._index.story_of(slot)), self._merged_by(article.id), True)
            if self._record is not None and article.id in self._unindexed:
                known = self._record.story_of(article.id)
                if known is not None:  # decided before, but not comparable any more
                    return Placement(self._resolve(known), self._merged_by(article.id), True)
            return self._place_new(article, id_hash)

    def resolve(self, story_id: str) -> str:
        """The story that ``story_id`` is part of now (itself unless it was merged into another)."""
        with self._lock:
            return self._resolve(story_id)

    def _resolve(self, story_id: str) -> str:
        seen = 0
        while story_id in self._merged and seen < 64:  # chains are short; the bound guards a bad file
            story_id, seen = self._merged[story_id], seen + 1
        return story_id

    def _merged_by(self, article_id: str) -> tuple[str, ...]:
        return self._record.merged_by(article_id) if self._record is not None else ()

    def _evidence(self, feats: Features, t: int) -> Evidence | None:
        """What the candidate stories of a new article say about it (None: there are none)."""
        found = candidates.find(self._index, feats, t)
        return evidence.gather(feats, self._index, found, t) if found.stories else None

    def _place_new(self, article: Article, id_hash: int) -> Placement:
        index = self._index
        t = _time_of(article)
        feats = _features(article)
        below = feats.passage
        ev = self._evidence(feats, t)
        story: int | None = None
        absorbed: list[int] = []
        if ev is not None:
            stories = ev.stories.tolist()
            closed = {at for at, s in enumerate(stories) if s in index.roundups} if index.roundups else set()
            chosen = decision.choose(ev, feats.roundup, closed)
            if chosen is None and not feats.roundup and ev.slots is not None:
                verbatim = index.passages.containment(below, feats.size, ev.slots.tolist())
                chosen = decision.copy_of(ev, verbatim, closed)
            story = None if chosen is None else stories[chosen]
            if not feats.roundup and not feats.long and index.rarity.docs >= decision.MERGE_MIN_DOCS:
                first = [float(index.first[s]) for s in stories]
                others = [stories[at] for at in decision.merges(ev, chosen, first, t, closed)]
                story, absorbed = self._survivor(story, others, t)
        starts_roundup = feats.roundup and story is None
        started = story is None
        if story is None:
            story_id = "s-" + article.id
            story = index.new_story(story_id)
        else:
            story_id = index.story_id(story)
        absorbed_ids = tuple(index.story_id(other) for other in absorbed)
        trailer, sample, bound = passages.trailer(below, feats.size)
        blob = signature.choose_encoded(feats, t, index.rarity) + trailer
        if self._record is not None:
            self._record.insert(GroupingDecision(article.id, story_id, blob, float(signature.time_of(blob)),
                                                 absorbed_ids, starts_roundup))  # fmt: skip
        if starts_roundup:
            index.roundups.add(story)
        index.add_encoded(id_hash, blob, story, (sample, bound))
        for other, other_id in zip(absorbed, absorbed_ids, strict=True):
            index.merge_story(other, story)
            self._merged[other_id] = story_id
            log.info("grouping: story %s merged into %s (article %s)", other_id, story_id, article.id)
        self._compact()
        return Placement(story_id, absorbed_ids, started=started)

    def _survivor(self, story: int | None, others: list[int], t: int) -> tuple[int | None, list[int]]:
        """The story that survives a merge (the oldest, so the first alert stays the story's alert) and the rest."""
        if not others:
            return story, []
        first = self._index.first
        ranked = sorted(others, key=lambda s: (first[s], s))
        if story is not None and (min(first[story], t), story) < (first[ranked[0]], ranked[0]):
            return story, ranked
        survivor = ranked.pop(0)
        return survivor, ranked + ([story] if story is not None else [])

    def explain(self, article: Article) -> tuple[Evidence | None, list[str]]:
        """The evidence ``assign`` would weigh for a new article, and the story id of each candidate story.

        Nothing is changed. For fitting the model (bench/fit_grouping.py) and for answering "why did this join?".
        """
        with self._lock:
            ev = self._evidence(_features(article), _time_of(article))
            ids = [] if ev is None else [self._index.story_id(s) for s in ev.stories.tolist()]
            return ev, ids

    def record(self, article: Article, story_id: str) -> None:
        """Index ``article`` under a story decided elsewhere (a labelled replay), creating it if new.

        In memory only: used to replay labelled data with the right stories, never by the pipeline.
        """
        with self._lock:
            index = self._index
            story = self._named.get(story_id)
            if story is None or story >= index.stories or index.story_id(story) != story_id:
                self._named = {index.story_id(s): s for s in range(index.stories)}  # renumbered by a compaction
                story = self._named.get(story_id)
                if story is None:
                    story = self._named[story_id] = index.new_story(story_id)
            t = _time_of(article)
            feats = _features(article)
            if feats.roundup and index.members_n[story] == 0:
                index.roundups.add(story)
            trailer, sample, bound = passages.trailer(feats.passage, feats.size)
            blob = signature.choose_encoded(feats, t, index.rarity) + trailer
            index.add_encoded(_id_hash(article.id), blob, story, (sample, bound))
            self._compact()

    def _compact(self, force: bool = False) -> int:
        dropped = self._index.maybe_compact(force)
        if dropped and self._record is not None:
            self._record.evict(self._index.clock - self._index.window_s)
            log.info("grouping index %s: %d articles older than %s evicted", self._record.path, dropped, self.window)
        return dropped

    def evict(self) -> int:
        """Drop the articles (and stories) that left the window; returns how many articles.

        Done on its own every few thousand assignments; the daemon may also call it on a timer so
        that a quiet index shrinks too.
        """
        with self._lock:
            return self._compact(force=True)

    def close(self) -> None:
        """Release the record; the in-memory index is dropped."""
        with self._lock:
            if self._record is not None:
                self._record.close()
                self._record = None

    def stats(self) -> dict[str, int]:
        """Sizes for health checks and benchmarks: indexed articles, stories, bytes of arrays."""
        return {"articles": self._index.slots, "stories": self._index.stories, "bytes": self._index.nbytes()}
