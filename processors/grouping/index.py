"""The story index: the signatures of the articles in the window, their stories, and their postings.

Each indexed article is one 32-byte record (``SLOT``: its time, story, previous member, where its
signature's arrays start, their lengths); the variable-length parts of all signatures live in two
flat arrays, one of 32-bit hashes (headline words, text words, figures) and one of 16-bit ones
(bigrams, subject, the low half of each sketch hash). All three grow with room to spare (pages
never written are not memory in use), so adding an article writes in place. Slots are numbered in
arrival order. Each story knows its newest member, and each member the previous one, so a story's
members are found without a scan. Articles older than the window are dropped and the rest
renumbered once enough are dead; stories with no member left go with them (a merged-away story has
none).
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from typing import Any

import numpy as np

from processors.grouping import native, signature
from processors.grouping.passages import Passages, split
from processors.grouping.postings import IdTable, Postings
from processors.grouping.rarity import Rarity
from processors.grouping.signature import Signature

_CHECK_EVERY = 4096  # articles added between two looks for articles that left the window
_LAST_SECOND = 2**32 - 1  # times are whole seconds since 1970 in uint32 columns (good until 2106)
# One article (the compiled core reads the same struct): outlet is the low half of its hash.
SLOT = np.dtype([("t", "<u4"), ("story", "<i4"), ("prev", "<i4"), ("off32", "<u4"), ("off16", "<u4"),
                 ("outlet", "<u2"), ("size", "<u2"), ("n_head", "u1"), ("n_words", "u1"), ("n_figures", "u1"),
                 ("n_bigrams", "u1"), ("n_subject", "u1"), ("n_sketch", "u1"), ("flags", "u1"),
                 ("reach", "u1")])  # fmt: skip
FLAG_TEXT, FLAG_ROUNDUP = 1, 2
_ROOM32 = 3 * 255  # the most one article adds to a flat array (three runs of at most 255 values)


def whole_seconds(t: float) -> int:
    """A time as the index stores it: whole seconds since 1970, clamped to what a uint32 holds."""
    return min(max(math.floor(t), 0), _LAST_SECOND)


class Growing:
    """A numpy array used up to ``n``, grown by half when full (room never written costs no memory)."""

    def __init__(self, dtype: Any, values: np.ndarray | None = None) -> None:
        self.n = 0 if values is None else len(values)
        self._use(np.empty(max(1024, self.n + self.n // 2), dtype=dtype))
        if values is not None:
            self.data[: self.n] = values

    def _use(self, data: np.ndarray) -> None:
        """Make ``data`` the storage, with its plain-bytes view (``raw``) made once here, not per call: numpy
        describes a structured dtype anew for every view (the records' sixteen fields), a few microseconds
        an article on the real stream, where each article asks for it three times."""
        self.data = data
        self.raw = data.view(np.uint8)

    def view(self) -> np.ndarray:
        return self.data[: self.n]

    def raw_view(self) -> np.ndarray:
        """``view()`` as plain bytes (see ``raw``)."""
        return self.raw[: self.n * self.data.itemsize]

    def reserve(self, extra: int) -> None:
        """Room for ``extra`` more items."""
        if self.n + extra > len(self.data):
            grown = np.empty(self.n + extra + (self.n + extra) // 2, dtype=self.data.dtype)
            used = self.n * self.data.itemsize
            grown.view(np.uint8)[:used] = self.raw[:used]  # as bytes: a structured copy goes field by field, 20x slower
            self._use(grown)
            native.release_memory()  # the old array

    def extend(self, values: np.ndarray) -> None:
        self.reserve(len(values))
        self.data[self.n : self.n + len(values)] = values
        self.n += len(values)

    @property
    def nbytes(self) -> int:
        """Bytes in use (the room beyond ``n`` is never written, so it is not memory in use)."""
        return self.n * self.data.itemsize


def _ragged(flat: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``flat[s:s+l]`` for each (s, l) concatenated, and for each value the position of the run it came from."""
    total = int(lens.sum())
    owner = np.repeat(np.arange(len(lens)), lens)
    if total == 0:
        return flat[:0].copy(), owner
    ends = np.cumsum(lens)
    return flat[np.arange(total) - (ends - lens)[owner] + starts[owner]], owner


@dataclass(slots=True)
class Batch:
    """The signatures of some indexed articles, as arrays for vectorised comparison.

    Ragged fields come as (values, owner): ``owner[i]`` is the position in ``slots`` of the article
    that ``values[i]`` belongs to.
    """

    slots: np.ndarray
    t: np.ndarray
    story: np.ndarray
    outlet: np.ndarray
    size: np.ndarray
    flags: np.ndarray
    head: tuple[np.ndarray, np.ndarray]
    words: tuple[np.ndarray, np.ndarray]
    figures: tuple[np.ndarray, np.ndarray]
    bigrams: tuple[np.ndarray, np.ndarray]
    subject: tuple[np.ndarray, np.ndarray]
    sketch: tuple[np.ndarray, np.ndarray]
    n_sketch: np.ndarray
    reach: np.ndarray  # uint8, signature.sample_reach of each


class Index:
    """Signatures of the articles in the window, their stories, postings and word frequencies."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.rarity = Rarity(window_s)
        self.records = Growing(SLOT)
        self.flat32 = Growing(np.uint32)
        self.flat16 = Growing(np.uint16)
        self.postings = Postings()
        self.ids = IdTable()  # hash of article id -> slot (idempotency)
        self.story_id_off = array("I")  # where each story's id starts in the blob (it ends where the next starts)
        self.story_id_blob = bytearray()
        self.last = array("i")  # per story: its newest member's slot (-1: none left)
        self.first = array("I")  # per story: the earliest time of its members
        self.members_n = array("I")  # per story: how many members it has
        self.roundups: set[int] = set()  # stories a round-up started: nothing but its own copies joins them
        self.passages = Passages()  # the recent articles' passage samples (passages.py), by slot
        self.clock = float("-inf")  # newest article time seen
        self._since_check = 0

    @property
    def slots(self) -> int:
        return self.records.n

    @property
    def stories(self) -> int:
        return len(self.story_id_off)

    def col(self, name: str) -> np.ndarray:
        """One field of every indexed article's record (a view)."""
        return self.records.view()[name]

    def new_story(self, story_id: str) -> int:
        self.story_id_off.append(len(self.story_id_blob))
        self.story_id_blob += story_id.encode("utf-8")
        self.last.append(-1)
        self.first.append(_LAST_SECOND)
        self.members_n.append(0)
        return len(self.story_id_off) - 1

    def story_id(self, story: int) -> str:
        offs = self.story_id_off
        end = offs[story + 1] if story + 1 < len(offs) else len(self.story_id_blob)
        return self.story_id_blob[offs[story] : end].decode("utf-8")

    def story_of(self, slot: int) -> int:
        return int(self.records.data[slot]["story"])

    def lookup_id(self, id_hash: int) -> int | None:
        return self.ids.first(id_hash)

    def add_encoded(self, id_hash: int, blob: bytes, story: int,
                    passage: tuple[np.ndarray | None, int] | None = None) -> int:  # fmt: skip
        """``add`` of a recorded signature (signature.encode, and the passage trailer if it has one): by the
        compiled core in one call when it is built. ``passage``: the trailer's sample (None: no trailer) and
        bound as the caller just wrote them (passages.trailer), so that they need not be read back."""
        if passage is None:
            encoded, sample, bound = split(blob)
        else:
            encoded, (sample, bound) = memoryview(blob), passage
        core = native.active()
        t = signature.time_of(blob)
        if core is None:
            slot = self.add(id_hash, signature.decode(bytes(encoded)), story)
        else:
            self.rarity.advance(t)
            r, records, flat32, flat16 = self.rarity, self.records, self.flat32, self.flat16
            records.reserve(1)
            flat32.reserve(_ROOM32)
            flat16.reserve(_ROOM32)
            keys, flat32.n, flat16.n = core.put(encoded, records.raw, records.n, flat32.data, flat32.n, flat16.data,
                                                flat16.n, self.last, self.first, self.members_n, story, r.words,
                                                r.bigrams, r.shingles, self.postings.buffer(),
                                                signature.VERSION)  # fmt: skip
            slot = records.n
            records.n += 1
            r.docs += 1
            r.counted_pool(signature.pooled(encoded))
            self.postings.added(keys)
            self._indexed(id_hash, slot, t)
        self.passages.add(slot, t, sample, bound, self.clock)
        return slot

    def add(self, id_hash: int, sig: Signature, story: int) -> int:
        """Index one article under ``story``, its words counted in the frequencies; returns its slot."""
        t = whole_seconds(sig.t)
        slot = self.slots
        self.rarity.advance(t)
        self.rarity.count(*sig.counted)
        record = np.zeros(1, dtype=SLOT)
        record[["t", "story", "prev", "off32", "off16", "outlet", "size"]] = (
            t, story, self.last[story], self.flat32.n, self.flat16.n, sig.outlet & 0xFFFF, sig.size)
        record[["n_head", "n_words", "n_figures", "n_bigrams", "n_subject", "n_sketch", "flags", "reach"]] = (
            len(sig.head), len(sig.words), len(sig.figures), len(sig.bigrams), len(sig.subject), len(sig.sketch),
            FLAG_TEXT * sig.has_text | FLAG_ROUNDUP * sig.roundup, sig.reach)  # fmt: skip
        self.records.extend(record)
        self.flat32.extend(np.concatenate([sig.head, sig.words, sig.figures]).astype(np.uint32))
        low = (sig.sketch & 0xFFFF).astype(np.uint16)
        self.flat16.extend(np.concatenate([sig.bigrams, sig.subject, low]).astype(np.uint16))
        self.last[story] = slot
        self.first[story] = min(self.first[story], t)
        self.members_n[story] += 1
        self.postings.add(sig.keys, slot)
        self._indexed(id_hash, slot, t)
        return slot

    def _indexed(self, id_hash: int, slot: int, t: int) -> None:
        self.ids.add(id_hash, slot)
        self.clock = max(self.clock, t)
        self._since_check += 1

    def members(self, story: int, t: float, cap: int) -> list[int]:
        """Up to ``cap`` members of ``story`` within the window of ``t``, newest first."""
        records, window = self.records.data, self.window_s
        out: list[int] = []
        slot = self.last[story]
        while slot >= 0 and len(out) < cap:
            record = records[slot]
            if abs(float(record["t"]) - t) <= window:
                out.append(slot)
            slot = int(record["prev"])
        return out

    def gather(self, slots: list[int]) -> Batch:
        """The signatures of ``slots`` as a Batch (vectorised reads of the records and flat arrays)."""
        idx = np.asarray(slots, dtype=np.int64)
        rec = self.records.view()[idx]
        nh, nw, nf = (rec[k].astype(np.int64) for k in ("n_head", "n_words", "n_figures"))
        nb, ns, nk = (rec[k].astype(np.int64) for k in ("n_bigrams", "n_subject", "n_sketch"))
        off32, off16 = rec["off32"].astype(np.int64), rec["off16"].astype(np.int64)
        flat32, flat16 = self.flat32.view(), self.flat16.view()
        return Batch(
            slots=idx, t=rec["t"].astype(np.float64), story=rec["story"], outlet=rec["outlet"], size=rec["size"],
            flags=rec["flags"], head=_ragged(flat32, off32, nh), words=_ragged(flat32, off32 + nh, nw),
            figures=_ragged(flat32, off32 + nh + nw, nf), bigrams=_ragged(flat16, off16, nb),
            subject=_ragged(flat16, off16 + nb, ns), sketch=_ragged(flat16, off16 + nb + ns, nk), n_sketch=nk,
            reach=rec["reach"],
        )  # fmt: skip

    def merge_story(self, absorbed: int, survivor: int) -> None:
        """Make every member of ``absorbed`` a member of ``survivor``; ``absorbed`` is left empty."""
        col = self.col("story")
        col[col == absorbed] = survivor
        self._relink(np.flatnonzero(col == survivor))
        self.first[survivor] = min(self.first[survivor], self.first[absorbed])
        self.members_n[survivor] += self.members_n[absorbed]
        self.last[absorbed], self.members_n[absorbed] = -1, 0

    def _relink(self, slots: np.ndarray) -> None:
        """Chain the (ascending) ``slots`` of one story, each to the one before it."""
        self.col("prev")[slots] = np.concatenate(([-1], slots[:-1]))
        self.last[self.story_of(int(slots[-1]))] = int(slots[-1])

    def maybe_compact(self, force: bool = False) -> int:
        """Drop articles and stories that fell out of the window if enough did (or ``force``); returns how many."""
        if not force and self._since_check < _CHECK_EVERY:
            return 0
        self._since_check = 0
        keep = self.col("t") >= self.clock - self.window_s
        dead = len(keep) - int(np.count_nonzero(keep))
        if not dead or (not force and dead < max(1024, self.slots // 4)):
            return 0
        self._compact(keep)
        return dead

    def _compact(self, keep: np.ndarray) -> None:
        """Keep only the slots in ``keep`` (and the stories with a member left); renumber both."""
        live = np.flatnonzero(keep)
        new_slot = np.full(self.slots + 1, -1, dtype=np.int64)
        new_slot[live] = np.arange(len(live))
        old = self.records.view()[live]
        story_keep = np.bincount(old["story"], minlength=self.stories) > 0
        new_story = np.full(self.stories, -1, dtype=np.int64)
        new_story[story_keep] = np.arange(int(story_keep.sum()))
        records = old.copy()
        records["story"] = new_story[old["story"]]
        lens32 = old["n_head"].astype(np.int64) + old["n_words"] + old["n_figures"]
        lens16 = old["n_bigrams"].astype(np.int64) + old["n_subject"] + old["n_sketch"]
        flat32, _ = _ragged(self.flat32.view(), old["off32"].astype(np.int64), lens32)
        flat16, _ = _ragged(self.flat16.view(), old["off16"].astype(np.int64), lens16)
        records["off32"] = np.concatenate(([0], np.cumsum(lens32)[:-1])) if len(live) else []
        records["off16"] = np.concatenate(([0], np.cumsum(lens16)[:-1])) if len(live) else []
        # Chains rebuilt from the story column: each member points at the previous member still kept.
        order = np.lexsort((np.arange(len(live)), records["story"]))
        by_story = records["story"][order]
        same = np.concatenate(([False], by_story[1:] == by_story[:-1]))
        records["prev"] = -1
        records["prev"][order[same]] = order[np.flatnonzero(same) - 1]
        stories = int(story_keep.sum())
        last = np.full(stories, -1, dtype=np.int32)
        ends = np.flatnonzero(np.append(by_story[1:] != by_story[:-1], True)) if len(live) else np.zeros(0, int)
        last[by_story[ends]] = order[ends]
        first = np.full(stories, _LAST_SECOND, dtype=np.uint32)
        np.minimum.at(first, records["story"], records["t"])
        self.records = Growing(SLOT, records)
        self.flat32, self.flat16 = Growing(np.uint32, flat32), Growing(np.uint16, flat16)
        self.last, self.first = array("i", last.tobytes()), array("I", first.tobytes())
        self.members_n = array("I", np.bincount(records["story"], minlength=stories).astype(np.uint32).tobytes())
        self._compact_story_ids(story_keep)
        self.roundups = {int(new_story[s]) for s in self.roundups if story_keep[s]}
        self.postings.remap(new_slot)
        self.ids.remap(new_slot)
        self.passages.remap(new_slot)
        native.release_memory()  # the replaced arrays and tables

    def _compact_story_ids(self, keep: np.ndarray) -> None:
        blob = bytearray()
        offs = array("I")
        ends = [*self.story_id_off[1:], len(self.story_id_blob)]
        for story in np.flatnonzero(keep).tolist():
            offs.append(len(blob))
            blob += self.story_id_blob[self.story_id_off[story] : ends[story]]
        self.story_id_blob = blob
        self.story_id_off = offs

    def nbytes(self) -> int:
        """Bytes held by the index's arrays (records, signatures, postings, stories, frequencies)."""
        arrays: list[array[Any]] = [self.story_id_off, self.last, self.first, self.members_n]
        own = sum(a.itemsize * len(a) for a in arrays) + len(self.story_id_blob)
        own += self.records.nbytes + self.flat32.nbytes + self.flat16.nbytes
        return own + self.postings.nbytes() + self.ids.nbytes() + self.rarity.nbytes() + self.passages.nbytes()
