"""Recent passages: how much of one text lies verbatim inside another, measured closely enough to call a copy.

The sketch and sample of a signature (shingles.py) are small, so that a million articles fit; they tell
two long copies apart from two same-topic texts, but a short text inside a long one (an outlet's lead
without its first sentence, an RSS description, a search API's snippet: 100-300 characters of a
1,000-character article) meets a long text's 24-hash sketch a few times at most, and its share reads
anywhere between 0.3 and 1. Copies of one release arrive within hours, so for the articles of the last
``RECENT_HOURS`` (and at most ``HASH_BUDGET`` hashes in all) the index also keeps a *passage sample*: every
shingle hash below ``SAMPLE_BELOW`` (one in four), at most ``SAMPLE_CAP`` of them (the smallest). Two texts
that share a passage share its sampled hashes (a coordinated sample), so

- the member inside the new text: the member's sampled hashes found among the new text's shingles, over
  the member's sample;
- the new text inside the member: the same hits, over the new text's hashes below the member's sample
  bound (all of ``SAMPLE_BELOW``, or its largest hash when capped).

``containment`` returns the larger, per member, when both counts are at least ``MIN_SAMPLED`` (0 when a
member has no passage sample: older than the recent window, or recorded before passages existed).
decision.copy_of turns it into the one rule that joins a copy the fitted models missed.

The sample travels with the recorded signature as a trailer (``trailer``; a record without one is still
read: it has no passage sample), so a restarted or stand-by grouper that replays the records rebuilds the
same passages and makes the same decisions.
"""

from __future__ import annotations

import struct
from collections import deque

import numpy as np

from processors.grouping import shingles, signature

SAMPLE_BELOW = shingles.PASSAGE_BELOW  # shingle hashes below this (one in four) make up a passage sample
SAMPLE_CAP = 512  # at most this many of them (the smallest): about the first 2,000 characters' worth
MIN_SAMPLED = 8  # sampled hashes each side needs before its share is read (fewer: too coarse to call a copy)
MIN_SHINGLES = 60  # texts with fewer distinct shingles (about 60 characters) share no passage worth a copy
RECENT_HOURS = 36.0  # passage samples are kept for articles this recent (copies arrive within hours)
HASH_BUDGET = 2_000_000  # and at most this many hashes in all (8 MB: 4,000 full texts); the oldest go first
_MAGIC = b"P1"
_TRAILER = struct.Struct("<2sHI")  # magic, count, bound (the sample's largest hash + 1, or SAMPLE_BELOW)
_EMPTY = np.zeros(0, dtype=np.uint32)
_LE32 = np.dtype("<u4")  # the trailer's hashes (the samples' own dtype on a little-endian machine: no copy)


def sampled(hashes: np.ndarray) -> np.ndarray:
    """A text's shingle hashes below SAMPLE_BELOW, ascending, all of them (what ``containment`` compares).

    The reference of ``Features.passage``, which shingles.shingle_hashes makes in the same pass as the rest."""
    return np.sort(hashes[hashes < SAMPLE_BELOW]).astype(np.uint32, copy=False)


def sample_of(below: np.ndarray) -> tuple[np.ndarray, int]:
    """The passage sample kept of a text (``sampled``, capped) and its bound: hashes below it were all kept."""
    if len(below) <= SAMPLE_CAP:
        return below, SAMPLE_BELOW
    kept = below[:SAMPLE_CAP]
    return kept, int(kept[-1]) + 1


def trailer(below: np.ndarray, size: int) -> tuple[bytes, np.ndarray | None, int]:
    """The trailer recorded after a signature, for a text of ``size`` distinct shingles whose ``sampled``
    hashes are ``below`` (nothing for a text too short to copy), with the sample and bound it holds: what
    ``split`` reads back from it."""
    if size < MIN_SHINGLES:
        return b"", None, 0
    sample, bound = sample_of(below)
    return _TRAILER.pack(_MAGIC, len(sample), bound) + sample.astype(_LE32, copy=False).tobytes(), sample, bound


def split(blob: bytes) -> tuple[memoryview, np.ndarray | None, int]:
    """A recorded signature without its trailer, and the trailer's sample and bound (None: it has none).

    ValueError when a trailer is there but unreadable (the record is then skipped, as any unreadable one)."""
    view = memoryview(blob)
    end = signature.encoded_size(blob)
    if len(blob) <= end:
        return view, None, 0
    try:
        magic, count, bound = _TRAILER.unpack_from(blob, end)
    except struct.error as exc:
        raise ValueError(f"passage trailer unreadable: {exc}") from exc
    at = end + _TRAILER.size
    if magic != _MAGIC or at + 4 * count != len(blob) or count > SAMPLE_CAP or not 0 < bound <= SAMPLE_BELOW:
        raise ValueError("passage trailer malformed")
    sample = np.frombuffer(blob, dtype="<u4", count=count, offset=at).astype(np.uint32)
    if count and (int(sample[-1]) >= bound or (np.diff(sample.astype(np.int64)) <= 0).any()):
        raise ValueError("passage trailer not an ascending sample below its bound")
    return view[:end], sample, bound


class Passages:
    """Passage samples of the recent indexed articles, by slot (index.py renumbers them on compaction)."""

    def __init__(self) -> None:
        self._sample: dict[int, np.ndarray] = {}
        self._bound: dict[int, int] = {}
        self._order: deque[tuple[int, int]] = deque()  # (slot, time) in arrival order: who goes first
        self.hashes = 0

    def __len__(self) -> int:
        return len(self._sample)

    def add(self, slot: int, t: int, sample: np.ndarray | None, bound: int, clock: float) -> None:
        """Keep ``slot``'s sample (if it has one and is recent at ``clock``); forget what is too old or over budget."""
        if sample is not None and len(sample) >= MIN_SAMPLED and t >= clock - RECENT_HOURS * 3600:
            # A copy of its own: the sample is often a view of the bytes the core returned, and small bytes live in
            # pymalloc's arenas, where one kept for hours pins the whole arena (7 B/article more at a million).
            self._sample[slot], self._bound[slot] = sample.copy(), bound
            self._order.append((slot, t))
            self.hashes += len(sample)
        order = self._order
        while order and (self.hashes > HASH_BUDGET or order[0][1] < clock - RECENT_HOURS * 3600):
            self._drop(order.popleft()[0])

    def _drop(self, slot: int) -> None:
        sample = self._sample.pop(slot, None)
        if sample is not None:
            self.hashes -= len(sample)
            del self._bound[slot]

    def remap(self, new_slot: np.ndarray) -> None:
        """Slots renumbered by a compaction (``new_slot[old]``, -1: dropped)."""
        moved = new_slot.tolist()
        order: deque[tuple[int, int]] = deque()
        sample, bound = {}, {}
        for slot, t in self._order:
            to = moved[slot]
            if to >= 0 and slot in self._sample:
                sample[to], bound[to] = self._sample[slot], self._bound[slot]
                order.append((to, t))
        self._sample, self._bound, self._order = sample, bound, order
        self.hashes = sum(len(s) for s in sample.values())

    def containment(self, mine: np.ndarray, size: int, slots: list[int]) -> np.ndarray:
        """Per slot, the larger of "member inside the new text" and "new text inside the member" (0: unknown),
        for a new text of ``size`` distinct shingles whose ``sampled`` hashes are ``mine``."""
        out = np.zeros(len(slots))
        if size < MIN_SHINGLES or not self._sample:
            return out
        get, rows, samples = self._sample.get, [], []
        for at, slot in enumerate(slots):
            sample = get(slot)
            if sample is not None:
                rows.append(at)
                samples.append(sample)
        if not rows:
            return out
        values = np.concatenate(samples)
        found = mine.take(np.searchsorted(mine, values), mode="clip") == values
        sizes = np.fromiter(map(len, samples), dtype=np.int64, count=len(samples))
        starts = np.zeros(len(sizes), dtype=np.int64)
        np.cumsum(sizes[:-1], out=starts[1:])
        hits = np.add.reduceat(found, starts).astype(np.float64)  # every kept sample has MIN_SAMPLED hashes
        bounds = np.fromiter(map(self._bound.__getitem__, (slots[at] for at in rows)), dtype=np.uint32, count=len(rows))
        within = np.searchsorted(mine, bounds)
        inside_new = hits / sizes
        inside_member = np.where(within >= MIN_SAMPLED, hits / np.maximum(within, 1), 0.0)
        out[rows] = np.minimum(1.0, np.maximum(inside_new, inside_member))
        return out

    def nbytes(self) -> int:
        """Bytes of the kept samples (the dictionaries' own overhead aside)."""
        return 4 * self.hashes
