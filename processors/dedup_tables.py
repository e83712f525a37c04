"""Low-level tables of the story index: an integer multimap and decaying document frequencies.

Both are plain numpy arrays so a million indexed articles cost a few bytes each. The multimap keeps
sorted key/value arrays (eight bytes an entry) plus a small dict of recent additions merged in
batches with one vectorised insert. Keys are hashes, so a directory indexed by their top bits
narrows each lookup to a few neighbouring entries, read at once for many keys (a binary search over
millions of entries costs a cache miss per step; this costs one or two).
Frequencies decay by a quarter every quarter window instead of remembering which article added what.
"""

from __future__ import annotations

import numpy as np

_MERGE_AT = 50_000  # buffered entries merged into the sorted arrays at this size
_WORD_BITS = 20  # frequency table size for word hashes (a count-min row)
_DECAY_STEPS = 4  # frequencies lose a quarter of their weight every window / 4
_SCAN = 64  # with a directory bucket of more entries than this, a batch is binary-searched instead
_AHEAD = np.arange(_SCAN)
_DIRECTORY_FROM = 2_000_000  # entries from which the directory beats a binary search (measured: 3.6M, 12M)


class Multimap:
    """Integer key -> integer values (slots), many values per key."""

    def __init__(self, key_dtype: type = np.uint32, directory_bits: int = 20) -> None:
        self._dtype = np.dtype(key_dtype)
        self.keys: np.ndarray = np.zeros(0, dtype=key_dtype)
        self.vals: np.ndarray = np.zeros(0, dtype=np.uint32)
        self._buffer: dict[int, list[int]] = {}
        self._buffered = 0
        self._bits = directory_bits
        self._shift = self._dtype.type(8 * self._dtype.itemsize - directory_bits)
        self._dir = np.zeros(0, dtype=np.uint32)  # bucket -> first entry; built once the table is large

    def _index_keys(self) -> None:
        """Rebuild the directory after the sorted keys changed (none while binary search is faster)."""
        if len(self.keys) < _DIRECTORY_FROM:
            self._dir = np.zeros(0, dtype=np.uint32)
            return
        counts = np.bincount((self.keys >> self._shift).astype(np.intp), minlength=1 << self._bits)
        self._dir = np.zeros(len(counts) + 1, dtype=np.uint32)
        self._dir[1:] = np.cumsum(counts)

    def __len__(self) -> int:
        return len(self.keys) + self._buffered

    def add(self, keys: list[int], value: int) -> None:
        for key in keys:
            bucket = self._buffer.get(key)
            if bucket is None:
                self._buffer[key] = [value]
            else:
                bucket.append(value)
        self._buffered += len(keys)
        if self._buffered >= _MERGE_AT:
            self.merge()

    def _runs(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each query key, where its entries start in the sorted arrays and how many there are."""
        keys = self.keys
        if not len(self._dir):  # a small table: a binary search stays in cache
            start = np.searchsorted(keys, query, "left")
            return start, np.searchsorted(keys, query, "right") - start
        bucket = query >> self._shift
        lo = self._dir[bucket].astype(np.int64)
        width = self._dir[bucket + 1] - lo
        span = int(width.max())
        if span > _SCAN or int(lo.max()) + span > len(keys):  # a crowded bucket, or the last entries
            start = np.searchsorted(keys, query, "left")
            return start, np.searchsorted(keys, query, "right") - start
        # Keys after a bucket are larger than any in it, so reading past its end changes no count.
        near = keys[lo[:, None] + _AHEAD[:span]]
        probe = query[:, None]
        return lo + (near < probe).sum(axis=1), (near == probe).sum(axis=1)

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
        bucket = self._buffer.get(key)
        if bucket:
            return bucket[-1]
        keys = self.keys
        if len(keys):
            at = int(np.searchsorted(keys, self._dtype.type(key), "right"))
            if at and keys[at - 1] == key:
                return int(self.vals[at - 1])
        return None

    def lookup(self, keys: np.ndarray, caps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values under each of ``keys`` and the position of the key they came from (vectorised).

        A key with more values than its cap gives none: too common to tell stories apart (boilerplate),
        and skipping it keeps lookups cheap. Values come grouped by key, in no particular order within.
        """
        if len(self.keys):
            start, counts = self._runs(keys)
        else:
            start = counts = np.zeros(len(keys), dtype=np.int64)
        buffer = self._buffer
        pending = [(i, bucket) for i, key in enumerate(keys.tolist()) if (bucket := buffer.get(key))] if buffer else []
        total = counts
        if pending:
            total = counts.copy()
            for i, bucket in pending:
                total[i] += len(bucket)
        ok = total <= caps
        lens = np.where(ok, counts, 0)
        vals = _ranges(self.vals, start, lens)
        which = np.repeat(np.arange(len(keys)), lens)
        if pending:
            more = [(i, bucket) for i, bucket in pending if ok[i]]
            if more:
                extra = [v for _, bucket in more for v in bucket]
                vals = np.concatenate([vals, np.asarray(extra, dtype=np.uint32)])
                which = np.concatenate([which, np.repeat([i for i, _ in more], [len(b) for _, b in more])])
        return vals, which

    def count(self, keys: np.ndarray) -> np.ndarray:
        """How many values each key has (vectorised)."""
        keys = np.asarray(keys, dtype=self._dtype)
        if len(self.keys):
            _, counts = self._runs(keys)
        else:
            counts = np.zeros(len(keys), dtype=np.int64)
        if self._buffer:
            buffer = self._buffer
            pending = [(i, len(bucket)) for i, key in enumerate(keys.tolist()) if (bucket := buffer.get(key))]
            if pending:
                counts = counts.copy()
                for i, n in pending:
                    counts[i] += n
        return counts

    def merge(self) -> None:
        """Move the buffer into the sorted arrays (one vectorised insert) and rebuild the bucket table."""
        if not self._buffered:
            return
        keys = np.fromiter((k for k, v in self._buffer.items() for _ in v), dtype=self._dtype, count=self._buffered)
        vals = np.fromiter((s for v in self._buffer.values() for s in v), dtype=np.uint32, count=self._buffered)
        order = np.argsort(keys, kind="stable")
        at = np.searchsorted(self.keys, keys[order], "right")
        self.keys = np.insert(self.keys, at, keys[order])
        self.vals = np.insert(self.vals, at, vals[order])
        self._index_keys()
        self._buffer.clear()
        self._buffered = 0

    def remap(self, new_value: np.ndarray) -> None:
        """Renumber values (``new_value[old]``, -1 = dropped) after a compaction."""
        self.merge()
        mapped = new_value[self.vals]
        keep = mapped >= 0
        self.keys = self.keys[keep]
        self.vals = mapped[keep].astype(np.uint32)
        self._index_keys()

    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.vals.nbytes + self._dir.nbytes)


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

    def _advance(self, t: float) -> None:
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

    def add(self, t: float, words: list[int], bigrams: list[int]) -> None:
        """Count one article's distinct word and bigram hashes at time ``t``."""
        self._advance(t)
        # Fancy-index increments touch each index once even if repeated: exactly "distinct per article".
        self.words[np.asarray(words, dtype=np.uint32) & np.uint32((1 << _WORD_BITS) - 1)] += 1
        self.bigrams[np.asarray(bigrams, dtype=np.uint16)] += 1
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
