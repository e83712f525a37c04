"""The story index: window-bounded storage of article signatures, their stories, postings and frequencies.

Per-article columns are ``array.array`` (cheap appends, a few bytes each, read as numpy views for
vectorised gathers); features of all articles live in one flat array of 16-bit units. Slots are
numbered in arrival order; articles older than the window are dropped and the rest renumbered once
enough are dead, and stories with no copy left in the window go with them (a merged-away story has
none).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from processors import dedup_native
from processors.dedup_tables import Frequencies, Multimap, Postings
from processors.dedup_text import Features

# Features stored per article (rarest first beyond the cap). A full text keeps few lead words: its
# text is represented by its sketch; headlines and snippets keep more of their snippet.
TITLE_CAP, BIGRAM_CAP, BODY_CAP, BODY_CAP_FULL = 16, 16, 16, 16
# Posting keys per article: headlines and snippets need many (a story's members share few words
# pairwise, and joining a story may take several of them); full texts are found by their shingles.
POSTING_WORDS, POSTING_WORDS_FULL, POSTING_SHINGLES = 40, 10, 2
MAX_POSTINGS = 256  # a key carried by more articles than this is not used to find candidates
MAX_SHINGLE_POSTINGS = 64  # a shingle in more full texts than this is not used to find candidates
COMMON_SHINGLE = 16  # a shingle already posted by this many full texts is left out of new sketches
MIN_HITS, CROWD = 2, 32  # with more candidates than CROWD, only those sharing MIN_HITS keys are scored
_CHECK_EVERY = 4096  # assignments between two looks for articles that left the window
SHINGLE_SALT = 0x5BD1E995  # shingle keys share the posting table with words, in their own key space

# "size": a full text's shingle count (its sketch's sample size); for any other article 1 if it has a
# snippet or text, 0 for a bare headline (so ``has_body`` costs no column of its own).
_COLUMNS = {"t": "I", "story": "i", "outlet": "I", "off": "I", "n_title": "B", "n_body": "B", "n_sketch": "B",
            "n_bigram": "B", "size": "H"}  # fmt: skip
_ADD_PARAMS = (TITLE_CAP, BODY_CAP, BODY_CAP_FULL, BIGRAM_CAP, POSTING_WORDS, POSTING_WORDS_FULL, POSTING_SHINGLES,
               SHINGLE_SALT)  # fmt: skip
_LAST_SECOND = 2**32 - 1  # times are whole seconds since 1970 in uint32 columns (four bytes, good until 2106)
_NP = {"i": np.int32, "I": np.uint32, "B": np.uint8, "H": np.uint16}


@dataclass(slots=True)
class Stored:
    """One indexed article as the scorer sees it."""

    slot: int
    story: int
    t: float
    title: set[int]
    title_bigrams: set[int]
    body: set[int]
    has_body: bool
    outlet: int
    sketch: list[int]
    size: int


class _Gathered(dict[str, list]):
    """Columns of some slots, read from the index on first access (most callers need only a few)."""

    def __init__(self, cols: dict[str, array[Any]], slots: list[int]) -> None:
        super().__init__()
        self._cols = cols
        self._idx = np.asarray(slots, dtype=np.int64)
        self.slots = slots

    def __missing__(self, name: str) -> list:
        values = self[name] = _view(self._cols[name])[self._idx].tolist()
        return values


def _view(arr: array) -> np.ndarray:
    """A transient numpy view of an array.array (never keep it: the array cannot grow while viewed)."""
    return np.frombuffer(arr, dtype=_NP[arr.typecode]) if len(arr) else np.zeros(0, dtype=_NP[arr.typecode])


class Index:
    """Signatures of the articles in the window, their stories, postings and word frequencies."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.freq = Frequencies(window_s)
        self.cols: dict[str, array[Any]] = {name: array(code) for name, code in _COLUMNS.items()}
        # Per slot from cols["off"]: title words | body words (each 32-bit hash as two 16-bit units, in the
        # machine's order) | title bigrams | sketch (low 16 bits of each shingle hash).
        self.flat16 = array("H")
        self.postings = Postings()
        self.ids = Multimap(np.uint64)  # hash of article id -> slot (idempotency)
        self.story_id_off = array("I")  # where each story's id starts in the blob (it ends where the next starts)
        self.story_id_blob = bytearray()
        self.roundups: set[int] = set()  # stories a round-up started: nothing but its own copies joins them
        self.clock = float("-inf")  # newest article time seen
        self._since_check = 0
        self._low_bits = np.zeros(1 << 16, dtype=bool)  # scratch table of shares_inside, kept all False

    @property
    def slots(self) -> int:
        return len(self.cols["t"])

    @property
    def stories(self) -> int:
        return len(self.story_id_off)

    def new_story(self, story_id: str) -> int:
        raw = story_id.encode("utf-8")
        self.story_id_off.append(len(self.story_id_blob))
        self.story_id_blob += raw
        return len(self.story_id_off) - 1

    def story_id(self, story: int) -> str:
        offs = self.story_id_off
        end = offs[story + 1] if story + 1 < len(offs) else len(self.story_id_blob)
        return self.story_id_blob[offs[story] : end].decode("utf-8")

    def story_of(self, slot: int) -> int:
        return self.cols["story"][slot]

    def sketch_of(self, pool: np.ndarray, k: int) -> np.ndarray:
        """The ``k`` smallest shingle hashes of a text that are not boilerplate or stock phrases."""
        core = dedup_native.active()
        if core is not None:
            pool = np.ascontiguousarray(pool, dtype=np.uint32)
            kept = core.sketch_keep(*self.postings.parts(), pool, SHINGLE_SALT, COMMON_SHINGLE, k)
            return np.frombuffer(kept, dtype=np.uint32)
        keep = self.postings.count(pool ^ np.uint32(SHINGLE_SALT)) < COMMON_SHINGLE
        return pool[keep][:k].astype(np.uint32)

    def members(self, stories: list[int]) -> dict[int, list[int]]:
        """The slots of each of ``stories``, by vectorised passes over the story column.

        Costs O(articles in the window) per call (about 0.15 ms a story at a million articles), so it
        serves the rare story-merge checks, not every assignment.
        """
        col = _view(self.cols["story"])
        if len(stories) <= 8:  # one comparison per story beats np.isin's sort for a few stories
            return {s: np.flatnonzero(col == s).tolist() for s in stories}
        hit = np.flatnonzero(np.isin(col, np.asarray(stories, dtype=np.int32)))
        out: dict[int, list[int]] = {s: [] for s in stories}
        for slot, story in zip(hit.tolist(), col[hit].tolist(), strict=True):
            out[story].append(slot)
        return out

    def merge_story(self, absorbed: int, survivor: int) -> None:
        """Make every article of story ``absorbed`` an article of ``survivor``; ``absorbed`` is left empty."""
        col = _view(self.cols["story"])
        col[col == absorbed] = survivor

    def lookup_id(self, id_hash: int) -> int | None:
        return self.ids.first(id_hash)

    def columns(self) -> tuple[array[Any], ...]:
        """The per-article columns in _COLUMNS order (for the compiled core)."""
        return tuple(self.cols.values())

    def add(self, id_hash: int, t: float, story: int, feats: Features, sketch: np.ndarray, size: int) -> int:
        """Index one article at ``t`` (made whole seconds, see ``whole_seconds``); returns its slot.

        Its features are capped to the rarest ones.
        """
        t = whole_seconds(t)
        slot = self.slots
        self.freq.advance(t)  # the frequencies the stored features are ranked by have decayed to t
        core = dedup_native.active()
        if core is not None:  # the sketch: a uint32 array
            added = core.index_add(self.columns(), self.flat16, self.freq.words, self.freq.bigrams,
                                   self.postings.buffer(), *feats.sorted_words(), sketch, slot, t, story, feats.outlet,
                                   feats.has_body, size, _ADD_PARAMS)  # fmt: skip
            self.freq.counted()  # the core counted its words and bigrams
            self.postings.added(added)
        else:
            self._add_py(t, story, feats, sketch.tolist(), size)
        self.ids.add([id_hash], slot)
        if t > self.clock:
            self.clock = t
        self._since_check += 1
        return slot

    def _add_py(self, t: int, story: int, feats: Features, sk: list[int], size: int) -> None:
        """``add``'s columns, features, frequency counts and postings (what the compiled core's index_add does)."""
        freq = self.freq
        rarest = _rarest_by(freq, feats)  # frequencies before this article is counted
        title = rarest(feats.title, TITLE_CAP)
        body = rarest(feats.body, BODY_CAP_FULL if sk else BODY_CAP)
        bigrams = sorted(feats.title_bigrams)[:BIGRAM_CAP]
        # Headline words first: they are what headline-only and snippet copies share with a full text.
        cap = POSTING_WORDS_FULL if sk else POSTING_WORDS
        keys = rarest(feats.title, cap)
        if len(keys) < cap:
            keys += rarest(feats.body - feats.title, cap - len(keys))
        slot = self.slots
        c = self.cols
        c["t"].append(t)
        c["story"].append(story)
        c["outlet"].append(feats.outlet)
        c["off"].append(len(self.flat16))
        c["n_title"].append(len(title))
        c["n_body"].append(len(body))
        c["n_sketch"].append(len(sk))
        c["n_bigram"].append(len(bigrams))
        c["size"].append(min(size, 65535) if sk else int(feats.has_body))
        self.flat16.frombytes(array("I", title + body).tobytes())
        self.flat16.extend(bigrams)
        self.flat16.extend([h & 0xFFFF for h in sk])
        freq.count(list(feats.title | feats.body), list(feats.title_bigrams))
        if sk:
            keys += [h ^ SHINGLE_SALT for h in sk[:POSTING_SHINGLES]]
        self.postings.add(keys, slot)

    def full_keys(self, feats: Features, lead_keys: int, common_df: float) -> list[int]:
        """The words that look up a full text's headline and snippet copies (its own copies share shingles).

        Its headline's words in ascending order, then its ``lead_keys`` rarest other lead words; a word
        is left out when more than ``common_df`` articles carry it, the new one counted.
        """
        rarest = _rarest_by(self.freq, feats)
        words = sorted(feats.title) + rarest(feats.body - feats.title, lead_keys)
        df = self.freq.word_df(np.asarray(words, dtype=np.uint32)).tolist()
        return [h for h, d in zip(words, df, strict=True) if d + 2.0 <= common_df]

    def stored(self, slot: int) -> Stored:
        c = self.cols
        off, nt, nb = c["off"][slot], c["n_title"][slot], c["n_body"][slot]
        ng, ns = c["n_bigram"][slot], c["n_sketch"][slot]
        flat16 = self.flat16
        boff = off + 2 * (nt + nb)
        words = array("I", flat16[off:boff].tobytes())
        return Stored(
            slot=slot,
            story=c["story"][slot],
            t=c["t"][slot],
            title=set(words[:nt]),
            title_bigrams=set(flat16[boff : boff + ng]),
            body=set(words[nt:]),
            has_body=c["size"][slot] > 0,  # a sketched full text's size is at least its sketch's
            outlet=c["outlet"][slot],
            sketch=flat16[boff + ng : boff + ng + ns].tolist(),
            size=c["size"][slot] if ns else 0,
        )

    def gather(self, slots: list[int]) -> _Gathered:
        """Per-article columns of several slots (each read, vectorised, when first asked for)."""
        return _Gathered(self.cols, slots)

    def candidates(self, word_keys: list[int], shingle_keys: list[int], t: float, limit: int) -> list[int]:
        """Slots sharing keys with the new article within the window of ``t``: most shared keys first.

        With no more than ``limit`` of them they come in the order they are first found (key by key,
        oldest first within a key), which the scorer's tie-breaking depends on.
        """
        core = dedup_native.active()
        if core is not None:
            query = word_keys + [h ^ SHINGLE_SALT for h in shingle_keys]
            query_caps = [MAX_POSTINGS] * len(word_keys) + [MAX_SHINGLE_POSTINGS] * len(shingle_keys)
            return core.candidates(*self.postings.parts(), query, query_caps, self.cols["t"], t, self.window_s, limit,
                                   CROWD, MIN_HITS)  # fmt: skip
        keys = np.asarray(word_keys + shingle_keys, dtype=np.uint32)
        keys[len(word_keys) :] ^= np.uint32(SHINGLE_SALT)
        caps = np.full(len(keys), MAX_POSTINGS, dtype=np.int64)
        caps[len(word_keys) :] = MAX_SHINGLE_POSTINGS
        slots, which = self.postings.lookup(keys, caps)
        if not len(slots):
            return []
        order = np.lexsort((which, slots))  # by slot, then by the key it was found under
        slots, which = slots[order], which[order]
        head = np.flatnonzero(np.concatenate(([True], slots[1:] != slots[:-1])))
        hits = np.diff(np.append(head, len(slots)))
        slots, first = slots[head].astype(np.int64), which[head]
        least = MIN_HITS if len(slots) > CROWD else 1  # one shared rare word is enough in a quiet index
        ok = (hits >= least) & (np.abs(_view(self.cols["t"])[slots] - t) <= self.window_s)
        slots, first, hits = slots[ok], first[ok], hits[ok]
        if len(slots) > limit:
            ranked = np.lexsort((-slots, -hits))[:limit]  # most shared keys, then newest
        else:
            ranked = np.lexsort((slots, first))  # in order of discovery
        return slots[ranked].tolist()

    def shares_inside(self, shingles: np.ndarray, cols: _Gathered) -> list[float]:
        """For each gathered slot, the share of its stored sketch found among the new text's shingles.

        Stored sketches hold the low 16 bits of shingle hashes, so a 65,536-entry table of the new
        text's low bits answers every probe at once (a chance match costs ~len(text)/65536).
        """
        core = dedup_native.active()
        if core is not None:
            shingles = np.ascontiguousarray(shingles, dtype=np.uint32)
            return core.shares_inside(shingles, self.flat16, self.columns(), cols.slots)  # type: ignore[no-any-return]
        table = self._low_bits
        low = (shingles & 0xFFFF).astype(np.intp)
        table[low] = True
        # A slot's sketch follows its words (two units each) and its bigrams.
        words = np.asarray(cols["n_title"], dtype=np.int64) + np.asarray(cols["n_body"], dtype=np.int64)
        starts = np.asarray(cols["off"], dtype=np.int64) + 2 * words + np.asarray(cols["n_bigram"], dtype=np.int64)
        lens = np.asarray(cols["n_sketch"], dtype=np.int64)
        probes = _gather(_view(self.flat16), starts, lens)
        found = table[probes].astype(np.int64)
        table[low] = False
        sums = np.zeros(len(lens), dtype=np.int64)
        ends = np.cumsum(lens)
        has = lens > 0
        if len(found):
            totals = np.concatenate(([0], np.cumsum(found)))
            sums = totals[ends] - totals[ends - lens]
        return np.where(has, sums / np.maximum(lens, 1), 0.0).tolist()

    def maybe_compact(self, force: bool = False) -> int:
        """Drop articles and stories that fell out of the window if enough did (or ``force``); returns how many."""
        if not force and self._since_check < _CHECK_EVERY:
            return 0
        self._since_check = 0
        keep = _view(self.cols["t"]) >= self.clock - self.window_s
        dead = len(keep) - int(np.count_nonzero(keep))
        if not dead or (not force and dead < max(1024, self.slots // 4)):
            return 0
        self.compact(keep)
        return dead

    def compact(self, keep: np.ndarray) -> None:
        """Keep only the slots in ``keep`` (and the stories still in the window); renumber both."""
        keep = keep.copy()
        live = np.flatnonzero(keep)
        new_slot = np.full(self.slots + 1, -1, dtype=np.int64)
        new_slot[live] = np.arange(len(live))
        story_keep = np.bincount(_view(self.cols["story"])[live], minlength=self.stories) > 0  # has a copy left
        new_story = np.full(self.stories, -1, dtype=np.int64)
        new_story[story_keep] = np.arange(int(story_keep.sum()))
        cols = {name: _view(col)[live].copy() for name, col in self.cols.items()}
        cols["story"] = new_story[cols["story"]].astype(np.int32)
        self._compact_features(live, cols)
        for name, values in cols.items():
            self.cols[name] = array(_COLUMNS[name], values.tobytes())
        self._compact_stories(story_keep)
        self.roundups = {int(new_story[s]) for s in self.roundups if story_keep[s]}
        for mm in (self.postings, self.ids):
            mm.remap(new_slot)
        dedup_native.release_memory()  # the replaced columns and tables

    def _compact_features(self, live: np.ndarray, cols: dict[str, np.ndarray]) -> None:
        c = self.cols
        words = _view(c["n_title"]).astype(np.int64) + _view(c["n_body"])
        lens = (2 * words + _view(c["n_bigram"]) + _view(c["n_sketch"]))[live]
        flat16 = _gather(_view(self.flat16), _view(c["off"])[live].astype(np.int64), lens)
        cols["off"] = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.uint32)
        self.flat16 = array("H", flat16.astype(np.uint16).tobytes())

    def _compact_stories(self, keep: np.ndarray) -> None:
        blob = bytearray()
        offs = array("I")
        ends = [*self.story_id_off[1:], len(self.story_id_blob)]
        for story in np.flatnonzero(keep).tolist():
            offs.append(len(blob))
            blob += self.story_id_blob[self.story_id_off[story] : ends[story]]
        self.story_id_blob = blob
        self.story_id_off = offs

    def nbytes(self) -> int:
        """Bytes held by the index's arrays (columns, features, postings, stories, frequencies)."""
        arrays: list[array[Any]] = [*self.cols.values(), self.flat16]
        arrays.append(self.story_id_off)
        own = sum(a.itemsize * len(a) for a in arrays) + len(self.story_id_blob)
        return own + self.postings.nbytes() + self.ids.nbytes() + self.freq.nbytes()


def whole_seconds(t: float) -> int:
    """A time as the index stores it: whole seconds since 1970, clamped to what a uint32 holds.

    Published times come to the second; the few bytes saved per article add up over a million.
    """
    return min(max(math.floor(t), 0), _LAST_SECOND)


def _frequencies(freq: Frequencies, hashes: set[int]) -> dict[int, float]:
    """Document frequency of each hash (one vectorised lookup)."""
    keys = list(hashes)
    return dict(zip(keys, freq.word_df(np.asarray(keys, dtype=np.uint32)).tolist(), strict=True)) if keys else {}


def _rarest_by(freq: Frequencies, feats: Features) -> Callable[[set[int], int], list[int]]:
    """``_rarest`` over the current word frequencies, for subsets of an article's words."""
    core = dedup_native.active()
    if core is not None:
        return lambda hashes, cap: core.rarest(freq.words, hashes, cap)
    df = _frequencies(freq, feats.title | feats.body)
    return lambda hashes, cap: _rarest(df, hashes, cap)


def _rarest(df: dict[int, float], hashes: set[int], cap: int) -> list[int]:
    """The ``cap`` hashes with the lowest document frequency (ties by value), sorted if all fit."""
    if len(hashes) <= cap:
        return sorted(hashes)
    return sorted(hashes, key=lambda h: (df[h], h))[:cap]


def _gather(flat: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenate ``flat[s:s+l]`` for each (s, l) without a Python loop."""
    total = int(lens.sum())
    if total == 0:
        return flat[:0].copy()
    ends = np.cumsum(lens)
    idx = np.arange(total) - np.repeat(ends - lens, lens) + np.repeat(starts, lens)
    return flat[idx]
