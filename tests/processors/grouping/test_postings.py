"""The index's storage (processors/grouping/postings.py, index.py) against plain dicts, on the core and on Python.

Why: a posting lost or misfiled in a merge, a renumbering or the buffer of recent additions would make a
copy miss its story without any error, and the postings have compiled twins (``pending_add``, the merge,
the lookups inside ``candidates.find``) that must store and read exactly what the Python path does.

- ``Postings`` against a dict of lists: additions (buffered by the core or by Python), merges, renumbering,
  lookups with a cap per key, sizes; the native and the numpy merge store the same arrays, also mixed and
  into storage filled with junk; keys that share a chain of the buffer keep their own values, whether the
  core or Python wrote the chain and whether Python (``lookup``) or the core (``find``) reads it;
- ``IdTable`` against a dict (newest slot per id, merges, renumbering), and its buffer out of the collector's way;
- an article's signature as the index gives it back (``Index.gather``) against what was chosen and added.

Postings store only the low 16 bits of each key (the bucket holds the rest), so the keys drawn here share
their low bits across buckets and their buckets across low bits: a mix-up would show.
"""

from __future__ import annotations

import gc
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.grouping import candidates, postings, shingles, signature
from processors.grouping.features import MIN_SHARED_TEXT, Features, extract
from processors.grouping.index import FLAG_ROUNDUP, FLAG_TEXT, Index
from processors.grouping.postings import IdTable, Postings
from processors.grouping.signature import SKETCH_K, Signature
from tests.processors.grouping.helpers import core_on

T = 1_780_000_000  # a time in the index's whole seconds


def _prose(seed: int, words: int) -> str:
    """Sentences of seeded random Hangul words: a text with as many distinct shingles as characters."""
    rng = random.Random(seed)
    drawn = ["".join(chr(0xAC00 + rng.randrange(11172)) for _ in range(rng.randint(2, 4))) for _ in range(words)]
    return " ".join(w + ("." if i % 9 == 8 else "") for i, w in enumerate(drawn))


_LEAD = "포항시는 20일 영일만 산업단지가 이차전지 특화단지로 지정됐고 31명이 새로 일한다고 밝혔다. "
_LONG_TEXT = _LEAD + _prose(1, 200)


def u32(keys: list[int]) -> np.ndarray:
    return np.asarray(keys, dtype=np.uint32)


def _keys(rng: np.random.Generator, n: int) -> list[int]:
    """Keys from 5 buckets x 5 low halves, including the extremes 0 and 2**32 - 1."""
    highs = np.array([0, 1, 0x1234, 0xFFFE, 0xFFFF], dtype=np.uint64)
    lows = np.array([0, 1, 0x00FF, 0xABCD, 0xFFFF], dtype=np.uint64)
    return ((highs[rng.integers(0, 5, n)] << np.uint64(16)) | lows[rng.integers(0, 5, n)]).tolist()


def looked_up(table: Postings, query: list[int], caps: list[int]) -> list[list[int]]:
    """For each key of ``query``, the values ``lookup`` gave for it (sorted: their order within a key is free)."""
    vals, which = table.lookup(u32(query), np.asarray(caps, dtype=np.int64))
    assert len(vals) == len(which)
    return [sorted(vals[which == i].tolist()) for i in range(len(query))]


def expected(truth: dict[int, list[int]], query: list[int], caps: list[int]) -> list[list[int]]:
    """What a lookup must give: each key's values, none for a key with more values than its cap."""
    values = [sorted(truth.get(k, [])) for k in query]
    return [v if len(v) <= cap else [] for v, cap in zip(values, caps, strict=True)]


# --- Postings against a dict -------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 400), st.booleans())
def test_postings_agree_with_a_dict(seed: int, slots: int, on: bool) -> None:
    rng = np.random.default_rng(seed)
    table, truth = Postings(), dict[int, list[int]]()
    with core_on(on):
        for slot in range(slots):
            keys = _keys(rng, int(rng.integers(1, 6)))
            for key in keys:
                truth.setdefault(key, []).append(slot)
            table.add(u32(keys), slot)
            if rng.random() < 0.05:
                table.merge()
    if slots % 3 == 0:  # drop every third slot and renumber the rest, as a compaction does
        new_value = np.full(slots, -1, dtype=np.int64)
        kept = [s for s in range(slots) if s % 3]
        new_value[kept] = np.arange(len(kept))
        with core_on(on):
            table.remap(new_value)
        truth = {k: [int(new_value[s]) for s in v if s % 3] for k, v in truth.items()}
        truth = {k: v for k, v in truth.items() if v}
    assert len(table) == sum(len(v) for v in truth.values())
    query = _keys(rng, 12) + [0x00020000]  # the last key is in no bucket used
    unbounded = [2**31] * len(query)
    assert looked_up(table, query, unbounded) == expected(truth, query, unbounded)
    caps = rng.integers(0, 8, len(query)).tolist()
    assert looked_up(table, query, caps) == expected(truth, query, caps)
    assert table.nbytes() == 6 * len(table.vals) + 4 * len(table.starts)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 300))
def test_native_and_python_merges_store_the_same_arrays(seed: int, slots: int) -> None:
    """Entry for entry, in the same order within a key (the order candidates are found in); the buffers they
    merge the same too, whichever path wrote them.

    The core merges in place once it has room; a Python merge in between takes the room away.
    """
    rng = np.random.default_rng(seed)
    batches = [[_keys(rng, int(rng.integers(0, 6))) for _ in range(int(rng.integers(1, 40)))] for _ in range(4)]
    stored, buffered = [], []
    for mode in ("native", "python", "mixed"):
        table, slot, pending = Postings(), 0, []
        for i, batch in enumerate(batches[: 1 + slots % 4]):
            with core_on(mode == "native" or (mode == "mixed" and i % 2 == 0)):
                for keys in batch:
                    table.add(u32(keys), slot)
                    slot += 1
            p = table._pending
            pending.append([p.n, *(a[: p.n].tolist() for a in (p.keys, p.vals, p.chain)), p.heads.tobytes()])
            with core_on(mode == "native" or (mode == "mixed" and i != 1)):
                table.merge()
        stored.append((table.keys.tolist(), table.vals.tolist(), table.starts.tolist()))
        buffered.append(pending)
    assert stored[0] == stored[1] == stored[2]
    assert buffered[0] == buffered[1] == buffered[2]


class _PoisonedPostings(Postings):
    """Postings whose new storage is filled with junk, so an entry the merge forgets to write shows."""

    @staticmethod
    def _allocate(room: int) -> tuple[np.ndarray, np.ndarray]:
        return np.full(room, 0xABCD, dtype=np.uint16), np.full(room, 0xABCDEF, dtype=np.uint32)


def test_a_merge_keeps_the_entries_below_its_lowest_new_key() -> None:
    """In place the core's merge stops at the lowest new key; into new storage it must copy the rest too."""
    stored = []
    query, caps = [0, 19, 0x00010005, 0xFFFF0000], [9] * 4
    for first, second in ((False, False), (False, True), (True, True)):  # Python, new storage, in place
        table = _PoisonedPostings()
        for slot in range(20):
            table.add(u32([slot, 0x00010000 + slot]), slot)
        with core_on(first):
            table.merge()
        table.add(u32([0xFFFF0000, 0x00010005]), 20)  # new keys in high buckets only
        with core_on(second):
            table.merge()
        assert looked_up(table, query, caps) == [[0], [19], [5, 20], [20]]
        stored.append((table.keys.tolist(), table.vals.tolist(), table.starts.tolist()))
    assert stored[0] == stored[1] == stored[2]


def test_postings_merge_when_their_buffer_fills(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postings, "_POSTINGS_MERGE_AT", 10)
    for on in (True, False):
        table = Postings()
        with core_on(on):
            for slot in range(9):
                table.add(u32([slot, 0x00010000 + slot]), slot)
        assert (table._buffered, len(table.vals)) == (8 + 10 - 10, 10)  # merged at 10, then 8 more
        assert looked_up(table, [0, 8, 0x00010008, 9], [9] * 4) == [[0], [8], [8], []]


def test_an_empty_table_finds_nothing() -> None:
    table = Postings()
    vals, which = table.lookup(u32([0, 2**32 - 1]), np.array([9, 9], dtype=np.int64))
    assert (len(vals), len(which), len(table), table.nbytes()) == (0, 0, 0, 4 * len(table.starts))
    for on in (True, False):  # nor does the core's lookup in find
        feats = extract("포항시 이차전지 특화단지 지정", _LONG_TEXT, "")
        with core_on(on):
            found = candidates.find(Index(7 * 86400.0), feats, float(T))
        assert found.stories == [] and len(found.slots) == len(found.owner) == len(found.shared) == 0


# --- the buffer's chains -----------------------------------------------------------------------------------------


def _sharing_a_chain(count: int) -> list[int]:
    """Keys that the postings buffer chains together (one hash of the key), drawn from many buckets."""
    mix, shift = postings._PENDING_MIX, postings._PENDING_SHIFT
    head = (0x12345 * mix & 0xFFFF_FFFF) >> shift
    found, key = list[int](), 0x12345
    while len(found) < count:
        if (key * mix & 0xFFFF_FFFF) >> shift == head:
            found.append(key)
        key += 1
    assert len({k >> 16 for k in found}) > 1
    return found


def _headline_of(keys: list[int]) -> Features:
    """A new article whose headline words are ``keys`` (nothing else), to look candidates up with."""
    empty32, empty16 = np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.uint16)
    head = np.unique(u32(keys))
    return Features(head=head, head_bigrams=empty16, text=empty32, everything=head, figures=empty32,
                    head_figures=empty32, subject=empty16, shingles=empty32, pool=empty32, sample=empty32,
                    outlet=0, has_text=False, roundup=False)  # fmt: skip


def _posted_only(keys: list[int]) -> Signature:
    """An indexed article that is nothing but its posting keys (not counted in the frequencies)."""
    empty32, empty16 = np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.uint16)
    return Signature(t=T, outlet=0, size=0, has_text=False, roundup=False, head=empty32, words=empty32,
                     figures=empty32, bigrams=empty16, subject=empty16, sketch=empty32, keys=u32(keys), reach=255,
                     counted=(empty32, empty16, empty32))  # fmt: skip


@pytest.mark.parametrize("writer", [True, False], ids=["core-writes", "python-writes"])
def test_buffered_keys_that_share_a_chain_keep_their_own_values(writer: bool) -> None:
    """Python's ``lookup`` and the core's ``find`` both read each key's own values off a shared chain."""
    keys = _sharing_a_chain(4)
    index, truth = Index(7 * 86400.0), dict[int, list[int]]()
    with core_on(writer):
        for slot in range(40):
            key = keys[slot * 7 % 3]  # the fourth key shares the chain but is never added
            index.add(slot, _posted_only([key]), index.new_story(f"s{slot}"))
            truth.setdefault(key, []).append(slot)
    table = index.postings
    assert table._buffered == 40 and not len(table.vals)
    caps = [13] * len(keys)
    assert looked_up(table, keys, caps) == expected(truth, keys, caps)
    for reader in (True, False):
        with core_on(reader):
            found = [candidates.find(index, _headline_of([k]), float(T)) for k in keys]
        # One story per slot, found in the order added.
        assert [f.stories for f in found] == [truth.get(k, []) for k in keys], reader
        assert [f.slots.tolist() for f in found] == [truth.get(k, []) for k in keys], reader


def test_the_core_and_python_read_each_others_buffered_entries() -> None:
    """The core's Index.add_encoded (``put``) writes the buffer that the Python path reads, and the other way
    round: the same buffer either way, and the same candidates found by either reader."""
    feats = extract("포항시 이차전지 특화단지 지정", _LONG_TEXT, "동해일보")
    assert feats.long and len(feats.sample) > 0
    buffers = []
    for writer in (True, False):
        index = Index(7 * 86400.0)
        with core_on(writer):
            for slot in range(3):
                blob = signature.choose_encoded(feats, T + slot, index.rarity)
                index.add_encoded(slot, blob, index.new_story(f"s-{slot}"))
        table = index.postings
        assert table._buffered == len(table) == table._pending.n > 0
        keys = signature.decode(blob).keys.tolist()
        assert looked_up(table, keys, [9] * len(keys)) == [[0, 1, 2]] * len(keys)  # each key posted by all three
        found = []
        for reader in (True, False):
            with core_on(reader):
                found.append(candidates.find(index, feats, float(T + 3)))
        assert found[0].stories == found[1].stories == [0, 1, 2]
        assert found[0].slots.tolist() == found[1].slots.tolist() == [0, 1, 2]
        assert found[0].shared.tolist() == found[1].shared.tolist() == [len(feats.sample)] * 3
        p = table._pending
        buffers.append([p.n, *(a[: p.n].tolist() for a in (p.keys, p.vals, p.chain)), p.heads.tobytes()])
    assert buffers[0] == buffers[1]


# --- the id table ------------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 500))
def test_the_id_table_agrees_with_a_dict(seed: int, adds: int) -> None:
    """The newest slot of each id hash (ids added again included), through merges and a compaction that drops the
    oldest slots and renumbers the rest."""
    rng = np.random.default_rng(seed)
    table, truth = IdTable(), {}
    pool = [0, 1, 2**63, 2**64 - 1, *rng.integers(0, 2**64 - 1, size=40, dtype=np.uint64).tolist()]
    for slot in range(adds):
        key = int(pool[int(rng.integers(0, len(pool)))]) if rng.random() < 0.3 else int(rng.integers(0, 2**63))
        table.add(key, slot)
        truth[key] = slot
        if rng.random() < 0.03:
            table.merge()
    probes = [*pool, *truth, 12345]
    assert [table.first(k) for k in probes] == [truth.get(k) for k in probes]
    cut = int(rng.integers(0, adds + 1))  # slots below it leave the window
    new_slot = np.full(adds, -1, dtype=np.int64)
    new_slot[cut:] = np.arange(adds - cut)
    table.remap(new_slot)
    truth = {k: s - cut for k, s in truth.items() if s >= cut}
    assert [table.first(k) for k in probes] == [truth.get(k) for k in probes]
    assert len(table) == len(table.keys) >= len(truth)


def test_buffered_ids_are_left_out_of_garbage_collection() -> None:
    """The id table's buffer holds only ints; tracked, every full collection would walk thousands of them.

    (The postings buffer their entries in flat arrays: nothing there for the collector.)
    """
    table = IdTable()
    table.add(2**63 + 5, 0)
    table.add(7, 1)
    table.add(7, 2)
    assert table._recent == {2**63 + 5: 0, 7: 2}
    assert not gc.is_tracked(table._recent)


# --- what the index gives back ----------------------------------------------------------------------------------

_TITLE = "포스코퓨처엠, 포항시 이차전지 특화단지에 428억 투자"


@pytest.mark.parametrize("on", [True, False], ids=["core", "python"])
@pytest.mark.parametrize(
    "body",
    [
        "",  # a bare headline
        "포항시가 이차전지 특화단지로 지정돼 2030년까지 투자가 이어진다…",  # a snippet
        _LEAD * 3,  # a short text
        _LONG_TEXT,  # a long text: features.LONG
    ],
    ids=["headline", "snippet", "short-text", "long-text"],
)
def test_the_index_gives_back_what_it_stored(body: str, on: bool) -> None:
    """Words, figures, bigrams, subject, the sketch's low halves, size, flags and reach round-trip through the
    records and flat arrays; each posting key finds the article; its story and time are its own."""
    feats = extract(_TITLE, body, "동해일보")
    index = Index(7 * 86400.0)
    neighbour = signature.choose_encoded(extract("다른 기사", "", ""), T, index.rarity)
    with core_on(on):
        index.add_encoded(1, neighbour, index.new_story("s-x"))
        sig = signature.choose(feats, T + 100, index.rarity)
        slot = index.add_encoded(2, signature.encode(sig), index.new_story("s-y"))
    batch = index.gather([slot])
    r = int(feats.long)
    for name, cap, source in (("head", signature.HEAD_CAP[r], feats.head),
                              ("words", signature.WORDS_CAP[r], feats.text)):  # fmt: skip
        kept = getattr(batch, name)[0].tolist()
        assert kept == getattr(sig, name).tolist() and len(kept) == min(cap, len(source)), name
        assert set(kept) <= set(source.tolist()), name
    assert batch.figures[0].tolist() == sig.figures.tolist() and len(sig.figures) == len(feats.figures) > 0
    assert batch.bigrams[0].tolist() == sig.bigrams.tolist()
    assert len(sig.bigrams) == min(signature.BIGRAM_CAP[r], len(feats.head_bigrams))
    assert batch.subject[0].tolist() == sig.subject.tolist() == feats.subject.tolist() != []
    assert batch.sketch[0].tolist() == (sig.sketch & 0xFFFF).tolist()
    assert len(sig.sketch) == (min(SKETCH_K, len(feats.pool)) if len(body) >= MIN_SHARED_TEXT else 0)
    assert int(batch.size[0]) == feats.size and int(batch.n_sketch[0]) == len(sig.sketch)
    flags = int(batch.flags[0])
    assert (bool(flags & FLAG_TEXT), bool(flags & FLAG_ROUNDUP)) == (feats.has_text, False)
    assert feats.has_text == bool(body)
    assert int(batch.reach[0]) == signature.sample_reach(feats.sample)
    assert batch.t[0] == T + 100
    assert index.story_id(int(batch.story[0])) == "s-y" and index.story_id(index.story_of(0)) == "s-x"
    keys = sig.keys.tolist()
    assert len(keys) == len(set(keys)) > 0
    assert all(slot in v for v in looked_up(index.postings, keys, [9] * len(keys)))
    assert index.ids.first(2) == slot and index.ids.first(1) == 0


def test_a_long_text_posts_its_sample_under_salted_keys() -> None:
    """A long text is posted under its shingle sample (salted), so a copy finds it by a shared passage."""
    feats = extract(_TITLE, _LONG_TEXT, "동해일보")
    assert feats.long and 0 < len(feats.sample) <= shingles.SAMPLE_CAP
    sig = signature.choose(feats, T, Index(7 * 86400.0).rarity)
    salted = (feats.sample ^ np.uint32(signature.SHINGLE_SALT)).tolist()
    assert sig.keys.tolist()[-len(salted) :] == salted
