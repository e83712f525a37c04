"""The index's storage: the postings table against a plain dict of lists (lookups, counts, merges and
renumbering), and an article's stored features against what was added.

Postings store only the low 16 bits of each key (the bucket holds the rest), so the keys drawn here
share their low bits across buckets and their buckets across low bits: a mix-up would show.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors import dedup_native, dedup_tables
from processors.dedup_index import BODY_CAP, SHINGLE_SALT, Index
from processors.dedup_tables import Postings
from processors.dedup_text import LONG_TEXT, SKETCH_K, extract


@contextmanager
def native(on: bool) -> Iterator[None]:
    before = dedup_native.enabled
    dedup_native.enabled = on and dedup_native.core is not None
    try:
        yield
    finally:
        dedup_native.enabled = before


def _keys(rng: np.random.Generator, n: int) -> list[int]:
    """Keys from 5 buckets x 5 low halves, including the extremes 0 and 2**32 - 1."""
    highs = np.array([0, 1, 0x1234, 0xFFFE, 0xFFFF], dtype=np.uint64)
    lows = np.array([0, 1, 0x00FF, 0xABCD, 0xFFFF], dtype=np.uint64)
    return ((highs[rng.integers(0, 5, n)] << np.uint64(16)) | lows[rng.integers(0, 5, n)]).tolist()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 400), st.booleans())
def test_postings_agree_with_a_dict(seed: int, slots: int, on: bool) -> None:
    rng = np.random.default_rng(seed)
    postings, truth = Postings(), {}
    for slot in range(slots):
        for key in _keys(rng, int(rng.integers(1, 6))):
            truth.setdefault(key, []).append(slot)
            postings.add([key], slot)
        if rng.random() < 0.05:
            with native(on):
                postings.merge()
    if slots % 3 == 0:  # drop every third slot and renumber the rest, as a compaction does
        new_value = np.full(slots, -1, dtype=np.int64)
        kept = [s for s in range(slots) if s % 3]
        new_value[kept] = np.arange(len(kept))
        postings.remap(new_value)
        truth = {k: [int(new_value[s]) for s in v if s % 3] for k, v in truth.items()}
        truth = {k: v for k, v in truth.items() if v}
    query = _keys(rng, 12) + [0x00020000]  # the last key is in no bucket used
    with native(on):
        counts = postings.count(np.asarray(query, dtype=np.uint32)).tolist()
        found = [postings.get([key]) for key in query]
        capped = postings.get(query, 3)
    assert counts == [len(truth.get(key, [])) for key in query]
    assert found == [sorted(truth.get(key, [])) for key in query]
    assert sorted(capped) == sorted(s for key in query if len(truth.get(key, [])) <= 3 for s in truth.get(key, []))
    assert postings.nbytes() == 6 * len(postings.vals) + 4 * (len(postings.starts))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 300))
def test_native_and_python_merges_store_the_same_arrays(seed: int, slots: int) -> None:
    """Entry for entry, in the same order within a key (the order candidates are found in).

    The core merges in place once it has room; a Python merge in between takes the room away.
    """
    rng = np.random.default_rng(seed)
    batches = [[_keys(rng, int(rng.integers(0, 6))) for _ in range(int(rng.integers(1, 40)))] for _ in range(4)]
    stored = []
    for mode in ("native", "python", "mixed"):
        postings, slot = Postings(), 0
        for i, batch in enumerate(batches[: 1 + slots % 4]):
            for keys in batch:
                postings.add(keys, slot)
                slot += 1
            with native(mode == "native" or (mode == "mixed" and i != 1)):
                postings.merge()
        stored.append((postings.keys.tolist(), postings.vals.tolist(), postings.starts.tolist()))
    assert stored[0] == stored[1] == stored[2]


class _PoisonedPostings(Postings):
    """Postings whose new storage is filled with junk, so an entry the merge forgets to write shows."""

    @staticmethod
    def _allocate(room: int) -> tuple[np.ndarray, np.ndarray]:
        return np.full(room, 0xABCD, dtype=np.uint16), np.full(room, 0xABCDEF, dtype=np.uint32)


def test_a_merge_keeps_the_entries_below_its_lowest_new_key() -> None:
    """In place the core's merge stops at the lowest new key; into new storage it must copy the rest too."""
    stored = []
    for first, second in ((False, False), (False, True), (True, True)):  # Python, new storage, in place
        postings = _PoisonedPostings()
        for slot in range(20):
            postings.add([slot, 0x00010000 + slot], slot)
        with native(first):
            postings.merge()
        postings.add([0xFFFF0000, 0x00010005], 20)  # new keys in high buckets only
        with native(second):
            postings.merge()
            assert postings.count(np.asarray([0, 19, 0x00010005, 0xFFFF0000], dtype=np.uint32)).tolist() == [1, 1, 2, 1]
        stored.append((postings.keys.tolist(), postings.vals.tolist(), postings.starts.tolist()))
    assert stored[0] == stored[1] == stored[2]


def _sharing_a_chain(count: int) -> list[int]:
    """Keys that the postings buffer chains together (one hash of the key), drawn from many buckets."""
    from processors.dedup_tables import _PENDING_MIX, _PENDING_SHIFT

    head = (0x12345 * _PENDING_MIX & 0xFFFF_FFFF) >> _PENDING_SHIFT
    found, key = [], 0x12345
    while len(found) < count:
        if (key * _PENDING_MIX & 0xFFFF_FFFF) >> _PENDING_SHIFT == head:
            found.append(key)
        key += 1
    return found


@pytest.mark.parametrize("on", [True, False])
def test_buffered_keys_that_share_a_chain_keep_their_own_values(on: bool) -> None:
    keys = _sharing_a_chain(4)
    postings, truth = Postings(), {}
    for slot in range(40):
        key = keys[slot * 7 % 3]  # the fourth key shares the chain but is never added
        postings.add([key], slot)
        truth.setdefault(key, []).append(slot)
    with native(on):
        assert postings.count(np.asarray(keys, dtype=np.uint32)).tolist() == [len(truth.get(k, [])) for k in keys]
        assert [postings.get([k]) for k in keys] == [truth.get(k, []) for k in keys]
        assert sorted(postings.get(keys, 13)) == sorted(s for k in keys if len(truth.get(k, [])) <= 13 for s in truth.get(k, []))


def test_the_core_and_python_read_each_others_buffered_entries() -> None:
    """The core's Index.add writes the buffer that the Python path reads, and the other way round."""
    feats = extract("포항시 이차전지 특화단지 지정", "포항시는 20일 영일만 산업단지가 이차전지 특화단지로 지정됐다. " * 12, "동해일보")
    for writer in (True, False):
        index = Index(window_s=7 * 86400)
        with native(writer):
            sketch = index.sketch_of(feats.pool, SKETCH_K)
            for slot in range(3):
                index.add(slot, 1_780_000_000.0 + slot, index.new_story(f"s-{slot}"), feats, sketch, len(feats.shingles))
        keys = sorted(feats.title) + [h ^ SHINGLE_SALT for h in sketch.tolist()]
        found = {}
        for reader in (True, False):
            with native(reader):
                found[reader] = ([index.postings.get([k]) for k in keys], index.postings.count(np.asarray(keys)).tolist())
        assert found[True] == found[False]
        assert [len(v) for v in found[True][0]][:3] == [3, 3, 3]  # the headline's words, posted by every article
        assert index.postings._buffered == len(index.postings) == index.postings._pending.n > 0


def test_postings_merge_when_their_buffer_fills(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dedup_tables, "_POSTINGS_MERGE_AT", 10)
    for on in (True, False):
        postings = Postings()
        with native(on):
            for slot in range(9):
                postings.add([slot, 0x00010000 + slot], slot)
            assert (postings._buffered, len(postings.vals)) == (8 + 10 - 10, 10)  # merged at 10, then 8 more
            assert postings.count(np.asarray([0, 8, 0x00010008, 9], dtype=np.uint32)).tolist() == [1, 1, 1, 0]


def test_an_empty_table_finds_nothing() -> None:
    postings = Postings()
    for on in (True, False):
        with native(on):
            assert postings.count(np.asarray([0, 2**32 - 1], dtype=np.uint32)).tolist() == [0, 0]
            assert postings.get([7]) == []


@pytest.mark.parametrize(
    ("title", "text"),
    [
        ("포항시 이차전지 특화단지 지정", ""),  # a bare headline
        ("포항시 이차전지 특화단지 지정", "포항시가 이차전지 특화단지로 지정돼 2030년까지 투자가 이어진다…"),  # a snippet
        ("포항시 이차전지 특화단지 지정", "포항시는 20일 영일만 산업단지가 이차전지 소재 특화단지로 지정됐다고 밝혔다. " * 12),  # full
    ],
)
def test_the_index_gives_back_what_it_stored(title: str, text: str) -> None:
    """Words (two 16-bit units each), bigrams, sketch, size and has_body round-trip through the flat array."""
    feats = extract(title, text, "동해일보")
    index = Index(window_s=7 * 86400)
    index.add(1, 1_780_000_000.9, index.new_story("s-x"), feats, np.zeros(0, dtype=np.uint32), 0)  # a neighbour
    sketch = index.sketch_of(feats.pool, SKETCH_K) if feats.pool is not None else np.zeros(0, dtype=np.uint32)
    size = len(feats.shingles) if feats.shingles is not None else 0
    slot = index.add(2, 1_780_000_100.7, index.new_story("s-y"), feats, sketch, size)
    stored = index.stored(slot)
    assert (stored.title, stored.title_bigrams) == (feats.title, feats.title_bigrams)
    assert stored.body == feats.body if len(feats.body) <= BODY_CAP else stored.body < feats.body
    assert len(sketch) == (SKETCH_K if len(text) >= LONG_TEXT else 0)
    assert stored.has_body == feats.has_body == bool(text)
    assert stored.sketch == [h & 0xFFFF for h in sketch.tolist()]
    assert stored.size == (size if len(sketch) else 0)
    assert stored.t == 1_780_000_100  # whole seconds
    assert index.story_id(stored.story) == "s-y" and index.story_id(0) == "s-x"
