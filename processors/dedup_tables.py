"""Low-level tables of the story index: an integer multimap and decaying document frequencies.

Both are plain numpy arrays so a million indexed articles cost a few bytes each. The multimap keeps
sorted key/value arrays plus a small dict of recent additions merged in batches with one vectorised
insert; the postings (word and shingle hashes) store only the low half of each key, six bytes an
entry, the high half being given by the bucket the entry sits in.
Frequencies decay by a quarter every quarter window instead of remembering which article added what.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from processors import dedup_native

_MERGE_AT = 50_000  # buffered entries merged into the sorted arrays at this size (Multimap)
# Postings buffer their additions in flat arrays (12 bytes an entry, not a dict of lists), so they can afford
# four times as many between merges: each merge moves every stored entry, so fewer merges cost less.
_POSTINGS_MERGE_AT = 200_000
_PENDING_ROOM = _POSTINGS_MERGE_AT + 4096  # one article adds a few dozen entries past the merge point at most
_PENDING_SHIFT = 13  # Postings' buffer is found by the top 19 bits of (key * _PENDING_MIX): 2**19 chain heads
_PENDING_MIX = 0x9E3779B1
_BufferParts = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]  # keys, vals, chain, heads, n (_Pending)
_BUCKETS = 1 << 16  # Postings: buckets of keys by their top 16 bits (a fixed 256 KB table of starts)
_WORD_BITS = 20  # frequency table size for word hashes (a count-min row)
_DECAY_STEPS = 4  # frequencies lose a quarter of their weight every window / 4


class Multimap:
    """Integer key -> integer values (slots), many values per key, in sorted arrays plus a buffer."""

    def __init__(self, key_dtype: type = np.uint64) -> None:
        self._dtype = np.dtype(key_dtype)
        self.keys: np.ndarray = np.zeros(0, dtype=key_dtype)
        self.vals: np.ndarray = np.zeros(0, dtype=np.uint32)
        self._buffer: dict[int, list[int]] = {}
        self._buffered = 0

    def __len__(self) -> int:
        return len(self.keys) + self._buffered

    def add(self, keys: list[int], value: int) -> None:
        core = dedup_native.active()
        if core is not None:
            core.multimap_add(self._buffer, keys, value)
        else:
            for key in keys:
                bucket = self._buffer.get(key)
                if bucket is None:
                    self._buffer[key] = [value]
                else:
                    bucket.append(value)
        self.added(len(keys))

    def added(self, count: int) -> None:
        """Note ``count`` entries just put in the buffer (by ``add`` or the compiled core); merges when it is full."""
        self._buffered += count
        if self._buffered >= _MERGE_AT:
            self.merge()

    def _runs(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each query key, the [lo, hi) range of its entries in the sorted arrays."""
        return np.searchsorted(self.keys, query, "left"), np.searchsorted(self.keys, query, "right")

    def get(self, keys: list[int], max_per_key: int | list[int] = 1 << 30) -> list[int]:
        """Values stored under any of ``keys`` (may repeat); keys with more than their cap are skipped."""
        if not keys:
            return []
        caps = np.asarray(max_per_key if isinstance(max_per_key, list) else [max_per_key] * len(keys))
        vals, which = self.lookup(np.asarray(keys, dtype=self._dtype), caps)
        order = np.lexsort((vals, which))  # per key: ascending values, as stored
        return vals[order].tolist()

    def first(self, key: int) -> int | None:
        """The newest (largest) value stored under one key, or None (a scalar fast path)."""
        core = dedup_native.active()
        if core is not None and self._dtype == np.uint64:
            return core.first_u64(self.keys, self.vals, self._buffer, key)  # type: ignore[no-any-return]
        bucket = self._buffer.get(key)
        if bucket:
            return bucket[-1]
        if len(self.vals):
            lo, hi = self._runs(np.asarray([key], dtype=self._dtype))
            if hi[0] > lo[0]:
                return int(self.vals[hi[0] - 1])
        return None

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

    def count(self, keys: np.ndarray) -> np.ndarray:
        """How many values each key has (vectorised)."""
        keys = np.asarray(keys, dtype=self._dtype)
        if len(self.vals):
            start, end = self._runs(keys)
            counts = end - start
        else:
            counts = np.zeros(len(keys), dtype=np.int64)
        return counts + np.asarray([len(p) for p in self._buffered_values(keys.tolist())], dtype=np.int64)

    def _buffered_values(self, keys: list[int]) -> list[list[int]]:
        """The buffered values of each key (an empty list for a key with none)."""
        buffer = self._buffer
        return [buffer.get(key, []) for key in keys] if buffer else [[] for _ in keys]

    def _take_buffer(self) -> tuple[np.ndarray, np.ndarray]:
        """The buffered entries sorted by key (stable: a key's values stay in the order added); clears the buffer."""
        keys = np.fromiter((k for k, v in self._buffer.items() for _ in v), dtype=self._dtype, count=self._buffered)
        vals = np.fromiter((s for v in self._buffer.values() for s in v), dtype=np.uint32, count=self._buffered)
        self._buffer.clear()
        self._buffered = 0
        order = np.argsort(keys, kind="stable")
        return keys[order], vals[order]

    def merge(self) -> None:
        """Move the buffer into the sorted arrays (one vectorised insert)."""
        if not self._buffered:
            return
        keys, vals = self._take_buffer()
        at = np.searchsorted(self.keys, keys, "right")
        self.keys = np.insert(self.keys, at, keys)
        self.vals = np.insert(self.vals, at, vals)
        dedup_native.release_memory()  # the replaced arrays

    def remap(self, new_value: np.ndarray) -> None:
        """Renumber values (``new_value[old]``, -1 = dropped) after a compaction."""
        self.merge()
        mapped = new_value[self.vals]
        keep = mapped >= 0
        self.keys = self.keys[keep]
        self.vals = mapped[keep].astype(np.uint32)

    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.vals.nbytes)


class Postings(Multimap):
    """A multimap of uint32 keys (word and shingle hashes) to slots, six bytes an entry.

    Entries are sorted by key and bucketed by the key's top 16 bits (a fixed table of 65,537 bucket
    starts), so only each key's low 16 bits are stored: the bucket holds the rest. A lookup then
    searches one bucket (what the compiled core does), and a million articles' dozen keys each save
    two bytes an entry over storing keys in full. Recent additions wait in a ``_Pending`` buffer of flat
    arrays (not the dict of lists a Multimap buffers in) until ``_POSTINGS_MERGE_AT`` of them are merged.
    """

    def __init__(self) -> None:
        super().__init__(np.uint32)
        self.keys = np.zeros(0, dtype=np.uint16)  # low 16 bits of each key, sorted within its bucket
        self.starts = np.zeros(_BUCKETS + 1, dtype=np.uint32)  # where each bucket (top 16 bits) starts
        # The compiled merge's storage: keys and vals are its first entries, and merges fill the rest in place.
        # None when keys and vals are arrays of their own.
        self._room: tuple[np.ndarray, np.ndarray] | None = None
        self._pending = _Pending()

    def add(self, keys: list[int], value: int) -> None:
        """``value`` under each of ``keys``, buffered (the reference path: the compiled core's Index.add does
        this in C, then calls ``added``)."""
        for key in keys:
            self._pending.put(key, value)
        self._check()

    def added(self, count: int) -> None:
        """Note ``count`` entries that the compiled core's Index.add just wrote to the buffer (after ``parts``)."""
        self._pending.n += count
        self._check()

    def _check(self) -> None:
        self._buffered = self._pending.n
        if self._buffered >= _POSTINGS_MERGE_AT:
            self.merge()

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
        core = dedup_native.active()
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
                dedup_native.release_memory()  # the replaced storage
            return
        self._room = None
        keys, vals = self._take_buffer()
        at = np.searchsorted(self._full_keys(), keys, "right")
        self.keys = np.insert(self.keys, at, (keys & np.uint32(0xFFFF)).astype(np.uint16))
        self.vals = np.insert(self.vals, at, vals)
        added = np.searchsorted(keys >> np.uint32(16), np.arange(_BUCKETS + 1, dtype=np.uint32), "left")
        self.starts = (self.starts + added).astype(np.uint32)
        dedup_native.release_memory()  # the replaced arrays and the full keys

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

    def count(self, keys: np.ndarray) -> np.ndarray:
        core = dedup_native.active()
        if core is not None:
            return np.asarray(core.multimap_count(*self.parts(), np.asarray(keys).tolist()), dtype=np.int64)
        return super().count(keys)

    def nbytes(self) -> int:
        return super().nbytes() + int(self.starts.nbytes)


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


class Frequencies:
    """In how many recent articles each word hash and each bigram hash occurs (decaying counts).

    Every quarter of the window all counts (and the article count) lose a quarter, so an article
    weighs about as much as it would in a sliding window, and nothing per article is remembered.
    Word hashes share a count-min row; the decay is deterministic, so replaying rebuilds it exactly.
    """

    def __init__(self, window_s: float) -> None:
        self.span = window_s / _DECAY_STEPS
        self.words = np.zeros(1 << _WORD_BITS, dtype=np.float32)
        self.bigrams = np.zeros(1 << 16, dtype=np.float32)
        self.docs = 0.0
        self.epoch: int | None = None

    @property
    def n(self) -> float:
        return self.docs

    def advance(self, t: float) -> None:
        """Decay the counts to time ``t`` (nothing if ``t`` is in the current quarter window or before it)."""
        epoch = int(t // self.span)
        if self.epoch is None:
            self.epoch = epoch
            return
        steps = epoch - self.epoch
        if steps <= 0:
            return  # a late article counts in the present
        self.epoch = epoch
        factor = np.float32(0.75**steps) if steps < 60 else np.float32(0.0)
        self.words *= factor
        self.bigrams *= factor
        self.docs *= float(factor)

    def count(self, words: Collection[int], bigrams: Collection[int]) -> None:
        """Count one article's distinct word and bigram hashes (``advance`` to its time first).

        The compiled core counts inside its Index.add, then calls ``counted``.
        """
        # Fancy-index increments touch each index once even if repeated: exactly "distinct per article".
        self.words[np.fromiter(words, np.uint32, len(words)) & np.uint32((1 << _WORD_BITS) - 1)] += 1
        self.bigrams[np.fromiter(bigrams, np.uint16, len(bigrams))] += 1
        self.counted()

    def counted(self) -> None:
        """One more article in the window (its words and bigrams are counted)."""
        self.docs += 1

    def word_df(self, hashes: np.ndarray) -> np.ndarray:
        return self.words[np.asarray(hashes, dtype=np.uint32) & np.uint32((1 << _WORD_BITS) - 1)]

    def bigram_df(self, hashes: np.ndarray) -> np.ndarray:
        return self.bigrams[np.asarray(hashes, dtype=np.uint16)]

    def nbytes(self) -> int:
        return int(self.words.nbytes + self.bigrams.nbytes)


def _ranges(values: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenate ``values[s:s+l]`` for each (s, l) without a Python loop."""
    total = int(lens.sum())
    if total == 0:
        return values[:0]
    ends = np.cumsum(lens)
    return values[np.arange(total) - np.repeat(ends - lens, lens) + np.repeat(starts, lens)]
