"""Group syndicated copies into stories: the story id of each article, decided once and remembered.

A press release reprinted by fifty outlets must become one story, whether the copies arrive as full
texts, snippets or bare headlines, and two events with the same vocabulary must not. ``Grouper``
keeps a compact index of the articles seen within the window (see dedup_index), scores the new
article against the candidates that share rare words or text shingles with it (see dedup_model)
and either joins the best story or starts a new one, named ``"s-" + article id``. A headline or
snippet may also show that stories begun apart are one event: they are then merged into the oldest
of them, whose id the article gets; ``place`` says which story ids were absorbed so that the story
records downstream can be folded together, and ``resolve`` maps any story id ever handed out to
the story it is part of now. With a path the decisions are written to SQLite before ``assign``
returns and replayed on start, so a restart or a redelivered event (the bus is at-least-once)
yields the same story ids and the same merges.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import NamedTuple

import numpy as np

from newsradar.errors import ConfigError
from newsradar.events import Article
from newsradar.settings import GroupingSettings
from processors import dedup_model as model
from processors import dedup_native
from processors.dedup_index import (
    COMMON_SHINGLE,
    CROWD,
    MAX_POSTINGS,
    MAX_SHINGLE_POSTINGS,
    MIN_HITS,
    SHINGLE_SALT,
    Index,
    Stored,
    whole_seconds,
)
from processors.dedup_store import GroupingStore, encode
from processors.dedup_text import SKETCH_K, Features, extract

log = logging.getLogger(__name__)

CANDIDATES = 256  # indexed articles scored per assignment at most (most shared keys first)
LEAD_KEYS = 4  # rarest lead words of a full text used to look for headline/snippet copies
_EMPTY = np.zeros(0, dtype=np.uint32)
_UNDECIDED = -1  # _full_text_story: the headline model must decide (story numbers are never negative; the core's too)
# Index.candidates' crowd rule and posting caps, the lead keys, and Index.sketch_of's rule, for the compiled place_full.
_FULL_PARAMS = (CROWD, MIN_HITS, MAX_POSTINGS, MAX_SHINGLE_POSTINGS, LEAD_KEYS, SHINGLE_SALT, COMMON_SHINGLE, SKETCH_K)


def _id_hash(article_id: str) -> int:
    """The 64-bit key of an article id in the index's id table.

    The table lives in memory only (a restart replays the ids from the grouping file), so Python's own
    string hash serves: cached on the string, and as unlikely to collide as any 64-bit hash.
    """
    return hash(article_id) & 0xFFFF_FFFF_FFFF_FFFF


def _time_of(article: Article) -> float:
    """When an article appeared, in the index's whole seconds (its published time, else when it was fetched)."""
    when = article.published_at or article.fetched_at or datetime.now(timezone.utc)
    stamp = when.timestamp()
    t = whole_seconds(stamp)
    if t != math.floor(stamp):
        log.warning("article %s from source %r: time %s out of range; grouped at %d", article.id, article.source,
                    when.isoformat(), t)  # fmt: skip
    return float(t)


def _look_up_pairs(rarity: model.Rarity, new: Features, others: list[Stored]) -> None:
    """Look up, in one batch each, the word and bigram IDFs that ``pair_features`` of these pairs need.

    Each pair would otherwise make its own two small lookups, and a headline finds dozens of candidates.
    """
    rarity.fill_words(set().union(*(other.title | other.body for other in others)))
    rarity.fill_bigrams(new.title_bigrams.union(*(other.title_bigrams for other in others)))


class Placement(NamedTuple):
    """Where an article went: its story, and the stories that this decision merged into it."""

    story_id: str
    absorbed: tuple[str, ...] = ()


class Grouper:
    """Decides which story each article belongs to (membership only; story records live elsewhere)."""

    def __init__(self, window: timedelta = timedelta(days=7), path: Path | None = None) -> None:
        if window <= timedelta(0):
            raise ConfigError(f"grouping.window_days: must be positive, got {window}")
        self.window = window
        self._index = Index(window.total_seconds())
        self._lock = threading.Lock()
        self._store: GroupingStore | None = None
        self._named: dict[str, int] = {}  # story id -> story number, for record()
        self._merged: dict[str, str] = {}  # absorbed story id -> the story it was merged into
        if path is not None:
            path = Path(path)
            if path.is_dir():
                path = path / "grouping.sqlite"
            self._store = GroupingStore(path)
            self._replay()

    @classmethod
    def from_settings(cls, grouping: GroupingSettings, path: Path | None) -> Grouper:
        """A grouper with the configured window; ``path`` None keeps the index in memory only."""
        return cls(window=timedelta(days=grouping.window_days), path=path)

    def _replay(self) -> None:
        assert self._store is not None
        stories: dict[str, int] = {}
        count = 0
        for row in self._store.rows():
            story = stories.get(row.story_id)
            if story is None:
                story = stories[row.story_id] = self._index.new_story(row.story_id)
            self._index.add(_id_hash(row.article_id), row.t, story, row.features, row.sketch, row.size)
            count += 1
        self._merged = self._store.survivors()
        self._index.roundups = {stories[s] for s in self._store.roundups() if s in stories}
        self._compact(force=True)
        log.info("grouping index %s: %d articles in %d stories reloaded", self._store.path, count, len(stories))

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

        A redelivery gets the same merges back (from the grouping file; an in-memory grouper
        reports them only the first time).
        """
        with self._lock:
            if not article.id:
                log.error("article from source %r (url %r) has an empty id; grouped as a new story",
                          article.source, article.url)  # fmt: skip
            id_hash = _id_hash(article.id)
            slot = self._index.lookup_id(id_hash)
            if slot is not None:
                return Placement(self._index.story_id(self._index.story_of(slot)), self._merged_by(article.id))
            if self._store is not None:
                known = self._store.story_of(article.id)
                if known is not None:  # decided before but already out of the window
                    return Placement(self._resolve(known), self._merged_by(article.id))
            return self._assign_new(article, id_hash)

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
        return self._store.merged_by(article_id) if self._store is not None else ()

    def _assign_new(self, article: Article, id_hash: int) -> Placement:
        t = _time_of(article)
        feats = self._features(article)
        roundup = model.is_roundup(article.title or "", article.outlet or "")
        story: int | None = _UNDECIDED
        sketch, size = _EMPTY, 0
        if feats.pool is not None and feats.shingles is not None:
            story, sketch = self._full_text_story(feats, t, roundup)
            size = len(feats.shingles)
        absorbed: list[int] = []
        if story == _UNDECIDED:
            story, absorbed = self._weigh(feats, sketch, size, t, roundup)
        starts_roundup = roundup and story is None
        if story is None:
            story_id = "s-" + article.id
            story = self._index.new_story(story_id)
        else:
            story_id = self._index.story_id(story)
        absorbed_ids = tuple([self._index.story_id(other) for other in absorbed]) if absorbed else ()
        if self._store is not None:
            self._store.insert(article.id, story_id, t, encode(feats, sketch, size), absorbed_ids, starts_roundup)
        if starts_roundup:
            self._index.roundups.add(story)
        for other, other_id in zip(absorbed, absorbed_ids, strict=True):
            self._index.merge_story(other, story)
            self._merged[other_id] = story_id
            log.info("grouping: story %s merged into %s (article %s)", other_id, story_id, article.id)
        self._index.add(id_hash, t, story, feats, sketch, size)
        self._compact()
        return Placement(story_id, absorbed_ids)

    def _full_text_story(self, feats: Features, t: float, roundup: bool) -> tuple[int | None, np.ndarray]:
        """A full text's sketch, and the story it joins when the full-text rules alone decide (else ``_UNDECIDED``).

        Its candidates are then all full texts: it joins the last story found that holds a
        near-verbatim copy of it (a round-up's story only if it is a round-up too), or starts a new
        story (None) when none does. A candidate that is a headline or snippet, or a copy from the
        same outlet (whose headline must agree too), needs the headline model: ``_weigh`` decides, and
        reaches the same answer in every case decided here; so does a text whose sketch is empty (all
        stock phrases), which is grouped as a headline and snippet. The compiled core does all of this
        in one call, looking each sketch shingle's postings up once.
        """
        assert feats.pool is not None and feats.shingles is not None
        index = self._index
        size = len(feats.shingles)
        common = model.common_df(index.freq.n)
        core = dedup_native.active()
        if core is not None:
            title, body, _ = feats.sorted_words()
            story, kept = core.place_full(*index.postings.parts(), index.columns(), index.flat16, index.freq.words,
                                          title, body, feats.pool, feats.shingles, size, feats.outlet, t,
                                          index.roundups, roundup, (index.window_s, CANDIDATES, *_FULL_PARAMS, common,
                                          model.NEAR_RESEMBLANCE, model.NEAR_CONTAINMENT))  # fmt: skip
            return story, np.frombuffer(kept, dtype=np.uint32)
        sketch = index.sketch_of(feats.pool, SKETCH_K)
        if not len(sketch):
            return _UNDECIDED, sketch
        slots = index.candidates(index.full_keys(feats, LEAD_KEYS, common), sketch.tolist(), t, CANDIDATES)
        cols = index.gather(slots)
        if not all(cols["n_sketch"]):
            return _UNDECIDED, sketch
        near_of: dict[int, bool] = {}
        inside = index.shares_inside(feats.shingles, cols) if slots else []
        for story, other_size, outlet, share in zip(cols["story"], cols["size"], cols["outlet"], inside, strict=True):
            near = model.near_verbatim(size, other_size, share)
            if near and feats.outlet and feats.outlet == outlet:
                return _UNDECIDED, sketch
            near_of[story] = near_of.get(story, False) or near
        joined = [s for s, near in near_of.items() if near and (roundup or s not in index.roundups)]
        return joined[-1] if joined else None, sketch

    def _weigh(
        self, feats: Features, sketch: np.ndarray, size: int, t: float, roundup: bool
    ) -> tuple[int | None, list[int]]:
        """The story an article joins by the full model (None: a new one), and the stories merged into it."""
        evidence = self._evidence(feats, sketch, size, t)
        closed = self._index.roundups
        if not roundup and closed:  # a report never joins (or merges with) a round-up's story
            evidence = {s: ev for s, ev in evidence.items() if s not in closed}
        story = model.choose_story(evidence, roundup)
        if not len(sketch) and evidence and not roundup and self._index.freq.n >= model.MERGE_MIN_DOCS:
            return self._merges(story, feats, t, evidence)
        return story, []

    def _merges(
        self, story: int | None, feats: Features, t: float, evidence: dict[int, model.StoryEvidence]
    ) -> tuple[int | None, list[int]]:
        """The story a headline/snippet article lands in once merges are made, and the stories merged into it.

        The story it joined (or the one it starts) is compared with each other candidate story that
        began within MERGE_HOURS of it; two single articles are never merged (that is the join
        model's call). The survivor is the oldest story, so the first alert stays the story's alert.
        """
        others = [s for s, ev in evidence.items() if s != story and ev.near is None]
        if not others:
            return story, []
        rarity = model.Rarity(self._index.freq, feats)
        members = self._index.members(others + ([story] if story is not None else []))
        words = {s: [self._words(slot) for slot in slots] for s, slots in members.items()}
        first = {s: min((self._index.cols["t"][slot] for slot in slots), default=t) for s, slots in members.items()}
        mine = [feats.title | feats.body]
        mine_first = t
        if story is not None:
            mine += words.pop(story)
            mine_first = min(first.pop(story), t)
        rarity.fill_words(set().union(*mine, *(w for group in words.values() for w in group)))
        centre = model.centroid(mine, rarity.words)
        joined = []
        for other in others:
            if max(len(mine), len(words[other])) < 2 or abs(first[other] - mine_first) > model.MERGE_HOURS * 3600:
                continue
            if model.stories_similar(centre, model.centroid(words[other], rarity.words)) >= model.MERGE_AT:
                joined.append(other)
        if not joined:
            return story, []
        ranked = sorted(joined, key=lambda s: (first[s], s))
        if story is not None and (mine_first, story) < (first[ranked[0]], ranked[0]):
            return story, ranked
        survivor = ranked.pop(0)
        return survivor, ranked + ([story] if story is not None else [])

    def _words(self, slot: int) -> set[int]:
        stored = self._index.stored(slot)
        return stored.title | stored.body

    def _signature(self, article: Article) -> tuple[Features, np.ndarray, int]:
        """Features of an article, its shingle sketch and its shingle count (empty sketch: not a full text)."""
        feats = self._features(article)
        return (feats, *self._sketch(feats))

    def _features(self, article: Article) -> Features:
        try:
            return extract(article.title or "", article.text or "", article.outlet or "")
        except (ValueError, UnicodeError) as exc:  # pragma: no cover - defensive: odd text never stops grouping
            log.error("article %s from source %r: features unreadable (%s); grouped on nothing",
                      article.id, article.source, exc)  # fmt: skip
            return Features(set(), set(), set(), False, 0, None, None)

    def _sketch(self, feats: Features) -> tuple[np.ndarray, int]:
        if feats.pool is None or feats.shingles is None:
            return _EMPTY, 0
        return self._index.sketch_of(feats.pool, SKETCH_K), len(feats.shingles)

    def _evidence(self, feats: Features, sketch: np.ndarray, size: int, t: float) -> dict[int, model.StoryEvidence]:
        """What the candidates found from the index say, story by story."""
        index = self._index
        rarity = model.Rarity(index.freq, feats)
        slots = index.candidates(self._keys(feats, len(sketch) > 0, rarity), sketch.tolist(), t, CANDIDATES)
        if not slots:
            return {}
        cols = index.gather(slots)
        stories = cols["story"]
        shingles = feats.shingles if len(sketch) else None  # the new article is a full text
        inside = index.shares_inside(shingles, cols) if shingles is not None else []
        # Only a full text is compared by sketch.
        sketched = cols["n_sketch"] if shingles is not None else [0] * len(slots)
        headlines = {i: index.stored(slot) for i, slot in enumerate(slots) if not sketched[i]}
        if headlines:
            _look_up_pairs(rarity, feats, list(headlines.values()))
        evidence: dict[int, model.StoryEvidence] = defaultdict(model.StoryEvidence)
        for i, slot in enumerate(slots):
            ev = evidence[stories[i]]
            other = headlines.get(i)
            if other is None:
                near = model.near_verbatim(size, cols["size"][i], inside[i])
                if near and feats.outlet and feats.outlet == cols["outlet"][i]:
                    near = model.same_outlet_headlines(feats, index.stored(slot).title, rarity)
                # A full text that copies none of a story's full texts is another article on the same topic.
                ev.near = bool(ev.near) or near
            else:
                ev.add(other, model.pair_features(feats, other, rarity, (t - other.t) / 3600))
        for ev in evidence.values():
            if ev.near is None:  # a story decided by its full texts needs no headline cover
                ev.finish(feats, rarity, t)
        return evidence

    def _keys(self, feats: Features, full: bool, rarity: model.Rarity) -> list[int]:
        """The words that look candidates up: the new article's words that are not common.

        A full text (``full``) offers only its headline and rarest lead words: its copies are found by shingles.
        """
        if not full:
            return rarity.rare(feats.title | feats.body)
        return self._index.full_keys(feats, LEAD_KEYS, model.common_df(self._index.freq.n))

    def explain(self, article: Article) -> dict[str, model.StoryEvidence]:
        """The evidence ``assign`` would weigh for a new article, by story id; nothing is changed.

        For fitting the model (bench/fit_grouping.py) and for answering "why did this join?".
        """
        with self._lock:
            feats, sketch, size = self._signature(article)
            evidence = self._evidence(feats, sketch, size, _time_of(article))
            return {self._index.story_id(story): ev for story, ev in evidence.items()}

    def record(self, article: Article, story_id: str) -> None:
        """Index ``article`` under a story decided elsewhere (a labelled replay), creating it if new.

        In memory only: used to replay labelled data with the right stories, never by the pipeline.
        """
        with self._lock:
            story = self._named.get(story_id)
            if story is None or story >= self._index.stories or self._index.story_id(story) != story_id:
                self._named = {self._index.story_id(s): s for s in range(self._index.stories)}  # renumbered
                story = self._named.get(story_id)
                if story is None:
                    story = self._named[story_id] = self._index.new_story(story_id)
            feats, sketch, size = self._signature(article)
            self._index.add(_id_hash(article.id), _time_of(article), story, feats, sketch, size)
            self._compact()

    def _compact(self, force: bool = False) -> int:
        dropped = self._index.maybe_compact(force)
        if dropped and self._store is not None:
            self._store.evict(self._index.clock - self._index.window_s)
            log.info("grouping index %s: %d articles older than %s evicted", self._store.path, dropped, self.window)
        return dropped

    def evict(self) -> int:
        """Drop the articles (and stories) that left the window; returns how many articles.

        Done on its own every few thousand assignments; the daemon may also call it on a timer so
        that a quiet index shrinks too.
        """
        with self._lock:
            return self._compact(force=True)

    def close(self) -> None:
        """Release the index file; the in-memory index is dropped."""
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def stats(self) -> dict[str, int]:
        """Sizes for health checks and benchmarks: indexed articles, stories, bytes of arrays."""
        return {"articles": self._index.slots, "stories": self._index.stories, "bytes": self._index.nbytes()}
