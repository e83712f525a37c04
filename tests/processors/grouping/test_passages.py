"""Passage samples (processors/grouping/passages.py) and the copy rule (decision.copy_of) they serve.

The estimates are checked against exact containment of the shingle sets; the trailer against what a
stranger's bytes could do to it; the rule against what it must never do (join one outlet's repeat, a
round-up's story, a text that only shares a stock phrase); and the samples against a restart: a grouper
that replays its record makes the same decision as the one that wrote it.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.grouping import Grouper, decision, passages, shingles, signature
from processors.grouping.features import extract
from processors.grouping.index import Index
from tests.processors.grouping.helpers import core_on, syndication_generator

ROOT = Path(__file__).resolve().parents[3]



gen = syndication_generator()
KEYS = gen.base_keys()


def _kinds(key: str) -> dict:
    return {c.kind: c.article for c in gen.by_key(key, extended=True)}


def _exact(a: str, b: str) -> float:
    """Exact containment of the smaller shingle set in the larger one."""
    sa, sb = (set(shingles.shingle_hashes_py(t)[0].tolist()) for t in (a, b))
    return len(sa & sb) / min(len(sa), len(sb))


def _estimate(member_text: str, new_text: str) -> float:
    """passages.containment of a new text against one indexed member (through the trailer, as the index reads it)."""
    store = passages.Passages()
    _, sample, bound = passages.split(b"\0" * 36 + _trailer(extract("", member_text, "").shingles))
    store.add(0, 0, sample, bound, clock=0)
    new = extract("", new_text, "").shingles
    return float(store.containment(passages.sampled(new), len(new), [0])[0])


def _trailer(shingles: np.ndarray) -> bytes:
    return passages.trailer(passages.sampled(shingles), len(shingles))[0]


@pytest.mark.parametrize("key", KEYS)
def test_the_estimate_is_close_to_exact_containment_for_every_kind_of_copy(key: str) -> None:
    """Against the exact share of shingles, for each kind of copy of each base, and for the other base's
    original (a different event: a low share must stay low). The lead-trimmed copy is ~250 characters inside a
    text several times longer: the case the signature's sketch reads anywhere between 0.3 and 1."""
    kinds = _kinds(key)
    original = kinds["original"].text
    other = _kinds(KEYS[(KEYS.index(key) + 1) % len(KEYS)])["original"].text
    for name, text in [*((k, a.text) for k, a in kinds.items() if k != "original"), ("other event", other)]:
        if len(extract("", text, "").shingles) < passages.MIN_SHINGLES:
            continue
        exact, got = _exact(original, text), _estimate(original, text)
        assert abs(got - exact) <= 0.12, (name, exact, got)
        assert abs(_estimate(text, original) - exact) <= 0.12, (name, "reversed", exact)


def test_a_long_members_capped_sample_still_reads_a_short_copy_of_any_part() -> None:
    """A member with more sampled hashes than SAMPLE_CAP keeps the smallest (a bound below which all are kept):
    a short passage from its end is measured over the new text's hashes below that bound, not over all."""
    rng = random.Random(7)
    syllables = [chr(0xAC00 + rng.randrange(11172)) for _ in range(12000)]
    long_text = "".join(syllables)
    sample, bound = passages.sample_of(passages.sampled(extract("", long_text, "").shingles))
    assert len(sample) == passages.SAMPLE_CAP and bound < passages.SAMPLE_BELOW
    tail = long_text[-600:]
    assert _estimate(long_text, tail) >= 0.85
    assert _estimate(long_text, "".join(rng.choice(syllables) for _ in range(600))) <= 0.1


def test_trailer_round_trip_and_records_without_one() -> None:
    original = _kinds(KEYS[0])["original"]
    feats = extract(original.title, original.text, original.outlet)
    index = Index(window_s=7 * 86400)
    core = signature.choose_encoded(feats, 1_750_000_000, index.rarity)
    trailer = _trailer(feats.shingles)
    encoded, sample, bound = passages.split(core + trailer)
    assert bytes(encoded) == core and bound == passages.SAMPLE_BELOW
    assert sample is not None and list(sample) == sorted(set(feats.shingles[feats.shingles < passages.SAMPLE_BELOW]))
    assert passages.split(core)[1] is None  # a record written before passages existed
    assert _trailer(extract("짧은 제목", "짧다", "").shingles) == b""


@pytest.mark.parametrize("mangle", ["truncated", "bad magic", "count too large", "unsorted", "above bound",
                                    "zero bound", "extra byte"])  # fmt: skip
def test_a_malformed_trailer_is_a_value_error_never_a_crash(mangle: str) -> None:
    original = _kinds(KEYS[1])["original"]
    feats = extract(original.title, original.text, original.outlet)
    core = signature.choose_encoded(feats, 1_750_000_000, Index(window_s=86400).rarity)
    trailer = bytearray(_trailer(feats.shingles))
    if mangle == "truncated":
        trailer = trailer[:-3]
    elif mangle == "bad magic":
        trailer[0:2] = b"XX"
    elif mangle == "count too large":
        trailer[2:4] = (passages.SAMPLE_CAP + 1).to_bytes(2, "little")
    elif mangle == "unsorted":
        trailer[8:12], trailer[12:16] = trailer[12:16], trailer[8:12]
    elif mangle == "above bound":
        trailer[4:8] = (1).to_bytes(4, "little")
    elif mangle == "zero bound":
        trailer[4:8] = bytes(4)
    else:
        trailer += b"\0"
    with pytest.raises(ValueError):
        passages.split(core + bytes(trailer))


def test_samples_follow_compaction_and_leave_with_age_and_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    store = passages.Passages()
    sample = np.arange(0, 40, dtype=np.uint32) * 1000
    for slot in range(5):
        store.add(slot, t=slot * 3600, sample=sample, bound=passages.SAMPLE_BELOW, clock=slot * 3600)
    store.remap(np.array([-1, 0, -1, 1, 2, -1]))
    assert len(store) == 3 and store.hashes == 120
    new = np.arange(0, 80, dtype=np.uint32) * 1000
    assert store.containment(new, len(new), [0, 1, 2, 3]).tolist() == [1.0, 1.0, 1.0, 0.0]
    store.add(3, t=100 * 3600, sample=sample, bound=passages.SAMPLE_BELOW, clock=100 * 3600)
    assert len(store) == 1  # the others are older than RECENT_HOURS now
    monkeypatch.setattr(passages, "HASH_BUDGET", 80)
    for slot in range(4, 8):
        store.add(slot, t=100 * 3600, sample=sample, bound=passages.SAMPLE_BELOW, clock=100 * 3600)
    assert store.hashes <= 80 and len(store) == 2  # the oldest went first


@pytest.mark.parametrize("native", [True, False])
def test_the_trimmed_lead_joins_on_both_paths_and_again_after_a_restart(tmp_path: Path, native: bool) -> None:
    """The rule is decided in Python on either path; the samples come back from the record after a restart."""
    with core_on(native):
        for key in KEYS[:6]:
            kinds = _kinds(key)
            path = tmp_path / f"{key}-{native}.sqlite"
            writer = Grouper(path=path)
            story = writer.assign(kinds["original"])
            writer.close()
            reader = Grouper(path=path)
            assert reader.resolve(reader.assign(kinds["lead-trimmed"])) == story, key
            reader.close()


def test_the_rule_never_joins_one_outlets_repeat_or_a_roundups_story() -> None:
    kinds = _kinds(KEYS[0])
    original, trimmed = kinds["original"], kinds["lead-trimmed"]
    same_outlet = Grouper()
    story = same_outlet.assign(original)
    ev, _ = same_outlet.explain(replace(trimmed, outlet=original.outlet))
    assert ev is not None and ev.slots is not None
    new = extract(trimmed.title, trimmed.text, trimmed.outlet).shingles
    verbatim = same_outlet._index.passages.containment(passages.sampled(new), len(new), ev.slots.tolist())
    assert verbatim.max() >= decision.VERBATIM_AT
    assert decision.copy_of(ev, verbatim, closed=set()) is None
    other = Grouper()
    other.assign(original)
    ev, ids = other.explain(trimmed)
    assert ev is not None
    verbatim = other._index.passages.containment(passages.sampled(new), len(new), ev.slots.tolist())
    assert ids[decision.copy_of(ev, verbatim, closed=set())] == story
    assert decision.copy_of(ev, verbatim, closed={0}) is None


def test_a_shared_stock_sentence_is_not_a_copy() -> None:
    """Two reports of different events that end on the same agency boilerplate share a passage, not a text."""
    stock = " 저작권자 동해일보 무단전재 및 재배포 금지 이 기사는 지역신문발전위원회 지원을 받아 작성됐습니다."
    first = _kinds(KEYS[0])["original"]
    second = _kinds(KEYS[3])["original"]
    grouper = Grouper()
    a = grouper.assign(replace(first, text=first.text + stock))
    b = grouper.assign(replace(second, text=second.text + stock, published_at=first.published_at + timedelta(hours=1)))
    assert grouper.resolve(a) != grouper.resolve(b)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tail=st.binary(max_size=64), cut=st.integers(min_value=0, max_value=400))
def test_any_bytes_after_a_signature_read_as_a_sample_or_a_value_error(tail: bytes, cut: int) -> None:
    """A damaged record (a cut trailer, or noise after the signature) is refused, never misread or crashed on."""
    original = _kinds(KEYS[2])["original"]
    feats = extract(original.title, original.text, original.outlet)
    core = signature.choose_encoded(feats, 1_750_000_000, Index(window_s=86400).rarity)
    trailer = _trailer(feats.shingles)
    for blob in (core + tail, core + trailer[: max(0, len(trailer) - cut)] + tail):
        try:
            encoded, sample, bound = passages.split(blob)
        except ValueError:
            continue
        assert bytes(encoded) == core
        assert sample is None or (len(sample) <= passages.SAMPLE_CAP and (not len(sample) or sample[-1] < bound))
