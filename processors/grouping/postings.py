"""The postings of the index: which indexed articles carry a key (a word or a shingle hash), and the id table.

Both are integer maps in plain numpy arrays, so a million indexed articles cost a few bytes each:
sorted key/value arrays plus a buffer of recent additions, merged in batches. The postings store only
the low half of each key, six bytes an entry, the high half being given by the bucket the entry sits
in; their lookups and merges have compiled twins (native.py) because at a million articles every one
of them misses the cache.
"""

from __future__ import annotations

import numpy as np

from processors.grouping import native

_MERGE_AT = 50_000  # recent ids merged into the sorted arrays at this size (IdTable)
# Postings buffer their additions in flat arrays (12 bytes an entry, not a dict of lists), so they can afford
# four times as many between merges: each merge moves every stored entry, so fewer merges cost less.
_POSTINGS_MERGE_AT = 200_000
_PENDING_ROOM = _POSTINGS_MERGE_AT + 4096  # one article adds a few dozen entries past the merge point at most
_PENDING_SHIFT = 13  # Postings' buffer is found by the top 19 bits of (key * _PENDING_MIX): 2**19 chain heads
_PENDING_MIX = 0x9E3779B1
_BufferParts = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]  # keys, vals, chain, heads, n (_Pending)
_BUCKETS = 1 << 16  # Postings: buckets of keys by their top 16 bits (a fixed 256 KB table of starts)


class IdTable:
    """Article id hash (uint64) -> slot: sorted arrays plus a dict of recent additions.

    The dict holds only ints, so the garbage collector never walks it; it is merged into the arrays
    every ``_MERGE_AT`` additions. A hash added twice answers with its newest slot.
    """

    def __init__(self) -> None:
        self.keys = np.zeros(0, dtype=np.uint64)
        self.vals = np.zeros(0, dtype=np.uint32)
        self._recent: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.keys) + len(self._recent)

    def add(self, key: int, slot: int) -> None:
        self._recent[key] = slot
        if len(self._recent) >= _MERGE_AT:
            self.merge()

    def first(self, key: int) -> int | None:
        """The newest slot of ``key``, or None."""
        slot = self._recent.get(key)
        if slot is not None or not len(self.keys):
            return slot
        at = int(self.keys.searchsorted(np.uint64(key), "right"))  # the method: a third of np.searchsorted's cost
        return self.vals.item(at - 1) if at and self.keys.item(at - 1) == key else None  # item: no numpy scalar

    def merge(self) -> None:
        """Move the recent additions into the sorted arrays (a key's newest slot last)."""
        if not self._recent:
            return
        keys = np.fromiter(self._recent.keys(), dtype=np.uint64, count=len(self._recent))
        vals = np.fromiter(self._recent.values(), dtype=np.uint32, count=len(self._recent))
        self._recent.clear()
        order = np.argsort(keys, kind="stable")
        at = np.searchsorted(self.keys, keys[order], "right")
        self.keys = np.insert(self.keys, at, keys[order])
        self.vals = np.insert(self.vals, at, vals[order])

    def remap(self, new_slot: np.ndarray) -> None:
        """Renumber slots (``new_slot[old]``, -1 = dropped) after a compaction."""
        self.merge()
        mapped = new_slot[self.vals]
        keep = mapped >= 0
        self.keys = self.keys[keep]
        self.vals = mapped[keep].astype(np.uint32)

    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.vals.nbytes) + 100 * len(self._recent)


class Postings:
    """A multimap of uint32 keys (word and shingle hashes) to slots, six bytes an entry.

    Entries are sorted by key and bucketed by the key's top 16 bits (a fixed table of 65,537 bucket
    starts), so only each key's low 16 bits are stored: the bucket holds the rest. A lookup then
    searches one bucket (what the compiled core does), and a million articles' dozen keys each save
    two bytes an entry over storing keys in full. Recent additions wait in a ``_Pending`` buffer of flat
    arrays until ``_POSTINGS_MERGE_AT`` of them are merged.
    """

    def __init__(self) -> None:
        self.keys = np.zeros(0, dtype=np.uint16)  # low 16 bits of each key, sorted within its bucket
        self.vals = np.zeros(0, dtype=np.uint32)
        self._buffered = 0
        self.starts = np.zeros(_BUCKETS + 1, dtype=np.uint32)  # where each bucket (top 16 bits) starts
        # The compiled merge's storage: keys and vals are its first entries, and merges fill the rest in place.
        # None when keys and vals are arrays of their own.
        self._room: tuple[np.ndarray, np.ndarray] | None = None
        self._pending = _Pending()

    def __len__(self) -> int:
        return len(self.vals) + self._buffered

    def add(self, keys: np.ndarray, value: int) -> None:
        """``value`` under each of ``keys`` (uint32), buffered; merged once ``_POSTINGS_MERGE_AT`` entries wait."""
        core = native.active()
        if core is not None:
            self._pending.n = core.pending_add(self._pending.parts(), keys, value)
        else:
            for key in keys.tolist():
                self._pending.put(key, value)
        self._check()

    def added(self, count: int) -> None:
        """Note ``count`` entries that the compiled core just put in the buffer (``buffer``)."""
        self._pending.n += count
        self._check()

    def _check(self) -> None:
        self._buffered = self._pending.n
        if self._buffered >= _POSTINGS_MERGE_AT:
            self.merge()

    def lookup(self, keys: np.ndarray, caps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values under each of ``keys`` and the position of the key they came from (vectorised).

        A key with more values than its cap gives none: too common to tell stories apart (boilerplate),
        and skipping it keeps lookups cheap. Values come grouped by key, in no particular order within.
        """
        if len(self.vals):
            start, end = self._runs(keys)
            counts = end - start
        else:
            start = counts = np.zeros(len(keys), dtype=np.int64)
        pending = self._buffered_values(keys.tolist())
        ok = counts + np.asarray([len(p) for p in pending], dtype=np.int64) <= caps
        lens = np.where(ok, counts, 0)
        vals = _ranges(self.vals, start, lens)
        which = np.repeat(np.arange(len(keys)), lens)
        more = [(i, p) for i, p in enumerate(pending) if p and ok[i]]
        if more:
            vals = np.concatenate([vals, np.asarray([v for _, p in more for v in p], dtype=np.uint32)])
            which = np.concatenate([which, np.repeat([i for i, _ in more], [len(p) for _, p in more])])
        return vals, which

    def _buffered_values(self, keys: list[int]) -> list[list[int]]:
        return [self._pending.values(key) for key in keys]

    def _take_buffer(self) -> tuple[np.ndarray, np.ndarray]:
        keys, vals = self._pending.entries()
        self._pending = _Pending()
        self._buffered = 0
        order = np.argsort(keys, kind="stable")
        return keys[order], vals[order]

    def _runs(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        query = np.asarray(query, dtype=np.uint32)
        lo = np.zeros(len(query), dtype=np.int64)
        hi = np.zeros(len(query), dtype=np.int64)
        for i, key in enumerate(query.tolist()):  # the reference path: the compiled core does this in C
            a, z = int(self.starts[key >> 16]), int(self.starts[(key >> 16) + 1])
            part = self.keys[a:z]
            lo[i] = a + int(np.searchsorted(part, key & 0xFFFF, "left"))
            hi[i] = a + int(np.searchsorted(part, key & 0xFFFF, "right"))
        return lo, hi

    def _buckets(self) -> np.ndarray:
        """The bucket (top 16 bits) of each stored entry."""
        return np.repeat(np.arange(_BUCKETS, dtype=np.uint32), np.diff(self.starts))

    def _full_keys(self) -> np.ndarray:
        """The sorted keys in full, rebuilt from their buckets and low halves."""
        return (self._buckets() << np.uint32(16)) | self.keys

    def merge(self) -> None:
        """Move the buffer into the sorted arrays (one vectorised insert) and update the bucket starts."""
        if not self._buffered:
            return
        core = native.active()
        if core is not None:
            total = len(self.vals) + self._buffered
            grow = self._room is None or len(self._room[1]) < total
            if grow:  # room for the next merges too: half as much again (only what merges write is in use)
                self._room = self._allocate(total + total // 2 + _POSTINGS_MERGE_AT)
            assert self._room is not None
            keys16, vals32 = self._room[0][:total], self._room[1][:total]
            # In place when there is room (the core merges from the back), else into the new storage.
            core.postings_merge(self.keys, self.vals, self.starts, self._pending.parts(), keys16, vals32, self.starts)
            self.keys, self.vals = keys16, vals32
            self._pending = _Pending()
            self._buffered = 0
            if grow:
                native.release_memory()  # the replaced storage
            return
        self._room = None
        keys, vals = self._take_buffer()
        at = np.searchsorted(self._full_keys(), keys, "right")
        self.keys = np.insert(self.keys, at, (keys & np.uint32(0xFFFF)).astype(np.uint16))
        self.vals = np.insert(self.vals, at, vals)
        added = np.searchsorted(keys >> np.uint32(16), np.arange(_BUCKETS + 1, dtype=np.uint32), "left")
        self.starts = (self.starts + added).astype(np.uint32)
        native.release_memory()  # the replaced arrays and the full keys

    @staticmethod
    def _allocate(room: int) -> tuple[np.ndarray, np.ndarray]:
        """Storage for ``room`` entries, left unwritten: pages not yet written are not memory in use."""
        return np.empty(room, dtype=np.uint16), np.empty(room, dtype=np.uint32)

    def remap(self, new_value: np.ndarray) -> None:
        self.merge()
        self._room = None
        mapped = new_value[self.vals]
        keep = mapped >= 0
        kept_per_bucket = np.bincount(self._buckets()[keep], minlength=_BUCKETS)
        self.starts = np.concatenate(([0], np.cumsum(kept_per_bucket))).astype(np.uint32)
        self.keys = self.keys[keep]
        self.vals = mapped[keep].astype(np.uint32)

    def parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, _BufferParts]:
        """Low key bits, their values, bucket starts and the buffer of recent additions (for the compiled core)."""
        return self.keys, self.vals, self.starts, self.buffer()

    def buffer(self) -> _BufferParts:
        """The buffer of recent additions as the compiled core reads and (in Index.add) writes it."""
        return self._pending.parts()

    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.vals.nbytes + self.starts.nbytes)


class _Pending:
    """Postings' recent additions: flat arrays in the order added, with a chain per hash of the key.

    ``heads[h]`` is one past the newest entry whose key hashes to h (0: none) and ``chain[i]`` one past the
    entry before entry i in its chain, so a key's values are found by walking a few entries. Written
    here by the reference path and in C by the compiled core's Index.add (see ``parts``); a fresh buffer
    after each merge, never written pages cost no memory.
    """

    def __init__(self) -> None:
        self.keys = np.empty(_PENDING_ROOM, dtype=np.uint32)
        self.vals = np.empty(_PENDING_ROOM, dtype=np.uint32)
        self.chain = np.empty(_PENDING_ROOM, dtype=np.int32)
        self.heads = np.zeros(1 << (32 - _PENDING_SHIFT), dtype=np.int32)
        self.n = 0

    @staticmethod
    def _head(key: int) -> int:
        return ((key * _PENDING_MIX) & 0xFFFF_FFFF) >> _PENDING_SHIFT

    def put(self, key: int, value: int) -> None:
        i = self.n
        if i >= _PENDING_ROOM:
            raise OverflowError("postings buffer full: merge first")
        h = self._head(key)
        self.keys[i], self.vals[i], self.chain[i] = key, value, self.heads[h]
        self.heads[h] = i + 1
        self.n = i + 1

    def values(self, key: int) -> list[int]:
        """The values buffered under ``key``, newest first."""
        out = []
        at = int(self.heads[self._head(key)])
        while at:
            if self.keys[at - 1] == key:
                out.append(int(self.vals[at - 1]))
            at = int(self.chain[at - 1])
        return out

    def entries(self) -> tuple[np.ndarray, np.ndarray]:
        """Keys and values in the order added."""
        return self.keys[: self.n].copy(), self.vals[: self.n].copy()

    def parts(self) -> _BufferParts:
        """The arrays and the count, for the compiled core (which writes the arrays; the caller counts)."""
        return self.keys, self.vals, self.chain, self.heads, self.n


def _ranges(values: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenate ``values[s:s+l]`` for each (s, l) without a Python loop."""
    total = int(lens.sum())
    if total == 0:
        return values[:0]
    ends = np.cumsum(lens)
    return values[np.arange(total) - np.repeat(ends - lens, lens) + np.repeat(starts, lens)]
