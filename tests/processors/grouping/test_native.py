"""The compiled grouping core (processors/grouping/_core.c) gives exactly what the pure-Python path gives.

Why: the Python functions are the reference (native.py); the core is only their faster twin, so every
entry point is run both ways (``native.enabled`` flipped) on the normal build and compared:

- text: ``features.word_arrays`` against ``word_arrays_py``, ``shingles.shingle_hashes`` against
  ``shingle_hashes_py`` (also at other pool sizes and sample bounds than the package's), the core's
  figures (``features.figure_arrays``) against ``text.figures``, on odd Unicode and on every article;
- ``features.extract`` of every article of the labelled dev sets and of the syndication fixtures;
- the index: ``signature.choose_encoded`` against ``encode(choose(...))``, and ``Index.add_encoded`` (the
  core's ``put``) against ``Index.add`` of the decoded signature, by comparing the whole index state;
- ``candidates.find`` against ``find_py``, on postings crowded on purpose (hypothesis) and on dev replays;
- ``evidence.measure`` (floats within 1e-9) and ``decision.probabilities`` at every article of dev replays;
- the story ids (and merges) of the whole ``Grouper`` over the dev sets, the extended syndication set,
  the benchmark's synthetic articles, and hand-made cases that reach each branch of the decision.

The pure-Python path groups about 500 articles a second, so the dev sets are cut to their first
``DEV_ROWS`` rows each (both files are in time order): the first 600 of battery_news/dev.jsonl
(headlines and snippets) and of fulltext_news/dev.jsonl (full texts). tests/processors/grouping/
test_fuzz_native.py fuzzes the same twins under sanitizers on hostile input; these run on real news.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsradar.events import Article
from processors.grouping import (
    Grouper,
    candidates,
    decision,
    evidence,
    features,
    native,
    passages,
    shingles,
    signature,
    text,
)
from processors.grouping.candidates import Found
from processors.grouping.features import Features
from processors.grouping.index import Index, whole_seconds
from processors.grouping.rarity import Rarity
from processors.grouping.signature import Signature
from tests.processors.grouping.helpers import core_on

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / ".." / "shared" / "corpus"
DEV_SETS = ("battery_news", "fulltext_news")
DEV_ROWS = 600  # of each dev set (see the module docstring)
WEEK = 7 * 86400.0


def twice(function: Any, *args: Any) -> tuple[Any, Any]:
    """``function(*args)`` on the core and on the pure-Python path."""
    with core_on(True):
        fast = function(*args)
    with core_on(False):
        slow = function(*args)
    return fast, slow


def assert_same_array(fast: np.ndarray, slow: np.ndarray, *what: object) -> None:
    assert fast.dtype == slow.dtype, (*what, fast.dtype, slow.dtype)
    assert np.array_equal(fast, slow), (*what, fast.tolist()[:20], slow.tolist()[:20])


def assert_same_found(fast: Found, slow: Found, *what: object) -> None:
    assert fast.stories == slow.stories, what
    for name in ("slots", "owner", "shared"):
        assert np.array_equal(getattr(fast, name), getattr(slow, name)), (*what, name)


def assert_close(fast: Any, slow: Any, *what: object) -> None:
    """Floats that may differ in their last bits (sums in another order)."""
    fast, slow = np.asarray(fast, dtype=np.float64), np.asarray(slow, dtype=np.float64)
    assert fast.shape == slow.shape, (*what, fast.shape, slow.shape)
    assert np.allclose(fast, slow, rtol=1e-9, atol=1e-12), (*what, fast, slow)


# --- inputs: the dev sets, the syndication fixtures, the benchmark's generator ------------------------------------


def _article(row: dict[str, Any]) -> Article:
    """A labelled row as an Article (as bench/fit_grouping.py makes them)."""
    published = datetime.fromisoformat(row["published"]) if row.get("published") else None
    return Article(id=row["id"], source=row.get("source") or "", outlet=row.get("outlet") or "",
                   url=row.get("url") or "", title=row.get("title") or "", text=row.get("text") or "",
                   published_at=published)  # fmt: skip


@functools.cache
def dev_rows(name: str) -> tuple[dict[str, Any], ...]:
    lines = (CORPUS / name / "dev.jsonl").read_text(encoding="utf-8").splitlines()
    return tuple(json.loads(line) for line in lines[:DEV_ROWS] if line.strip())


def dev_articles(name: str) -> list[Article]:
    return [_article(row) for row in dev_rows(name)]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@functools.cache
def syndication_articles() -> tuple[Article, ...]:
    """Every copy of every base of the syndication fixtures, the newer kinds included, in publication order."""
    gen = _load("syndication_generate_native", ROOT / "tests" / "data" / "syndication" / "generate.py")
    return tuple(c.article for c in gen.syndication_set(extended=True))


@functools.cache
def bench() -> ModuleType:
    return _load("bench_grouping_native", ROOT / "bench" / "bench_grouping.py")


def time_of(article: Article) -> int:
    """The article's time as the grouper reads it (every article here has a published time)."""
    assert article.published_at is not None, article.id
    return whole_seconds(article.published_at.timestamp())


def _id(article: Article) -> int:
    """The 64-bit key of an article id in the index's id table (as the grouper makes it)."""
    return hash(article.id) & 0xFFFF_FFFF_FFFF_FFFF


def extract(article: Article) -> Features:
    return features.extract(article.title, article.text, article.outlet)


# --- the build ------------------------------------------------------------------------------------------------------


def test_the_core_is_built() -> None:
    """CI builds it with `make setup`; a silent fallback to Python would hide a broken build."""
    assert native.core is not None
    assert native.enabled and native.active() is native.core


# --- text: words, shingles and figures --------------------------------------------------------------------------


def assert_same_text_features(head: str, body: str) -> None:
    """Words (every combination of cuts), shingles and figures of a headline and a text, core against Python."""
    head_norm, body_norm = text.norm(head), text.norm(body)
    for head_cut, body_cut in itertools.product((False, True), repeat=2):
        with core_on(True):
            fast = features.word_arrays(head_norm, head_cut, body_norm, body_cut)
        slow = features.word_arrays_py(head_norm, head_cut, body_norm, body_cut)
        for name, f, s in zip(("head", "bigrams", "text", "everything"), fast, slow, strict=True):
            assert_same_array(f, s, "word_arrays", name, head_cut, body_cut, head, body)
    for raw in (head, body):
        with core_on(True):
            distinct, pool, sample, passage = shingles.shingle_hashes(raw)
        ref, ref_pool, ref_sample, ref_passage = shingles.shingle_hashes_py(raw)
        assert len(np.unique(distinct)) == len(distinct), raw  # each hash once, in first-seen order
        assert_same_array(np.sort(distinct), ref, "shingles", raw)
        assert_same_array(pool, ref_pool, "pool", raw)
        assert_same_array(sample, ref_sample, "sample", raw)
        assert_same_array(passage, ref_passage, "passage", raw)
        assert_same_array(passage, passages.sampled(ref), "passage is passages.sampled", raw)
    with core_on(True):
        head_figures, all_figures = features.figure_arrays(head_norm, body_norm)
    assert head_figures.tolist() == sorted(text.figures(head_norm)), head
    assert all_figures.tolist() == sorted(text.figures(head_norm) | text.figures(body_norm)), (head, body)


_ODD = st.characters(codec=None, categories=None, exclude_categories=("Cs",))
_KOREAN = st.sampled_from([*"가나다포항시는에서으로의이가를라브4RAV٣٤.,%㎞ｋｍ１２３ＡＢ　 \n\t…-[]", "400억", "에서는"])  # fmt: skip
_FIGURES = st.sampled_from(["7.0%", "7%", "428억3000만", "31명", "1,234.50원", "3 명", "5퍼센트", "12㎞", "40 gwh",
                            "2025년", "5월", "10일", "7.%", "０.５%", "١٢٣ 명", "1." + "0" * 70 + "%"])  # fmt: skip
_RAW = st.lists(st.one_of(_ODD, _KOREAN, _FIGURES), max_size=60).map("".join)


@settings(max_examples=300, deadline=None)
@given(_RAW, _RAW)
def test_words_shingles_and_figures_match_on_odd_unicode(head: str, body: str) -> None:
    assert_same_text_features(head, body)


def test_words_shingles_and_figures_match_with_lone_surrogates_and_long_words() -> None:
    for raw in ("가\ud800나다라마바사아자차", "a" * 1000 + " 가" * 300, "가" * 600, "1.2.3,4억원대 rav4x 9٣",
                "\udbff\udfff가나다라마 😀" * 30, "포항시는 포항시에서는 포항시에게서 이라는 " * 40):  # fmt: skip
        assert_same_text_features(raw, raw)


def test_shingle_pools_and_samples_of_long_texts_match_at_any_size() -> None:
    """The core's pool and sample at other sizes than the package's are the prefixes of Python's hashes.

    Long texts take the core's threshold selection, small pools its retry with a wider threshold; a text
    of 60,000 characters is beyond the core's kept table of values seen (a table of its own).
    """
    assert native.core is not None
    corpus = bench().Corpus(vocabulary=5_000)
    texts = [corpus.story(s, chars)[1] for s in range(30) for chars in (300, 2_000, 9_000)]
    texts += ["포항시 이차전지 특화단지 " * 200, "가나다라마바사아자차" * 3]  # repeats: few distinct shingles
    texts.append(corpus.story(99, 60_000)[1])
    bounds = ((shingles.SAMPLE_BELOW, shingles.SAMPLE_CAP), (0, 32), (1 << 20, 1), (2**32 - 1, 5_000), (1 << 31, 0))
    passage_bounds = (shingles.PASSAGE_BELOW, 0, 1 << 20, 2**32 - 1)  # below, above and equal to the samples' bounds
    for raw in texts:
        ref, _, _, _ = shingles.shingle_hashes_py(raw)
        for want, (below, cap), passage_below in itertools.product((0, 1, 2, 3, 16, 64, 200, 5_000), bounds,
                                                                   passage_bounds):  # fmt: skip
            distinct, pool, sample, passage = (np.frombuffer(b, np.uint32)
                                               for b in native.core.shingles(raw, want, below, cap, passage_below))
            assert np.array_equal(np.sort(distinct), ref), raw[:40]
            assert np.array_equal(pool, ref[:want]), (raw[:40], want)
            assert np.array_equal(sample, ref[ref < below][:cap]), (raw[:40], below, cap, passage_below)
            assert np.array_equal(passage, ref[ref < passage_below]), (raw[:40], passage_below)


# --- features of real articles -----------------------------------------------------------------------------------

_ARRAYS = ("head", "head_bigrams", "text", "everything", "figures", "head_figures", "subject", "pool", "sample",
           "passage")
_SCALARS = ("outlet", "has_text", "roundup", "cut", "context", "size", "long")


@pytest.mark.parametrize("name", [*DEV_SETS, "syndication"])
def test_features_of_every_labelled_and_syndicated_article_match(name: str) -> None:
    articles = list(syndication_articles()) if name == "syndication" else dev_articles(name)
    for a in articles:
        assert_same_text_features(a.title, a.text)
        fast, slow = twice(features.extract, a.title, a.text, a.outlet)
        for field in _ARRAYS:
            assert_same_array(getattr(fast, field), getattr(slow, field), a.id, field)
        # The core's distinct hashes come in first-seen order, Python's sorted.
        assert_same_array(np.sort(fast.shingles), slow.shingles, a.id, "shingles")
        assert_same_array(fast.passage, passages.sampled(slow.shingles), a.id, "passage is passages.sampled")
        assert [getattr(fast, f) for f in _SCALARS] == [getattr(slow, f) for f in _SCALARS], a.id
        for f, s in zip(fast.packed(), slow.packed(), strict=True):
            assert_same_array(f, s, a.id, "packed")


# --- the index: signatures and what adding one does ---------------------------------------------------------------


def index_state(index: Index) -> dict[str, Any]:
    """Everything an index holds, as plain values (the buffer's arrays up to what is in use)."""
    pending = index.postings._pending
    return {
        "records": index.records.view().tobytes(), "flat32": index.flat32.view().tolist(),
        "flat16": index.flat16.view().tolist(), "last": index.last.tolist(), "first": index.first.tolist(),
        "members_n": index.members_n.tolist(), "story_ids": [index.story_id(s) for s in range(index.stories)],
        "rarity": [getattr(index.rarity, n).tobytes() for n in ("words", "bigrams", "shingles")],
        "docs": index.rarity.docs, "shingle_mass": index.rarity.shingle_mass, "epoch": index.rarity.epoch, "clock": index.clock,
        "postings": [a.tolist() for a in (index.postings.keys, index.postings.vals, index.postings.starts)],
        "pending": [pending.n, *(a[: pending.n].tolist() for a in (pending.keys, pending.vals, pending.chain)),
                    pending.heads.tobytes()],
        "buffered": (index.postings._buffered, len(index.postings)),
        "ids": (index.ids.keys.tolist(), index.ids.vals.tolist(), index.ids._recent),
    }  # fmt: skip


def replay_labelled(articles: list[Article], labels: list[str], on: bool, blobs: list[bytes]) -> Index:
    """An index fed ``blobs`` (one per article) under the articles' labelled stories, by ``add_encoded`` on the
    core (its ``put``) or on Python (``add`` of the decoded signature); the postings merged halfway."""
    index = Index(WEEK)
    stories: dict[str, int] = {}
    with core_on(on):
        for n, (article, label, blob) in enumerate(zip(articles, labels, blobs, strict=True)):
            story = stories.get(label)
            if story is None:
                story = stories[label] = index.new_story(label)
            index.add_encoded(_id(article), blob, story)
            if n == len(articles) // 2:
                index.postings.merge()
                index.ids.merge()
    return index


def labelled(name: str) -> tuple[list[Article], list[str]]:
    rows = dev_rows(name)
    return dev_articles(name), [row.get("story") or f"single-{row['id']}" for row in rows]


@pytest.mark.parametrize("name", DEV_SETS)
def test_signatures_chosen_by_the_core_are_pythons_as_the_window_fills(name: str) -> None:
    """``choose_encoded`` against ``encode(choose(...))`` at each article, with the window's frequencies as
    they are then (the rarest words change as articles are counted), and the bytes decode to that signature."""
    articles, _ = labelled(name)
    index = Index(WEEK)
    for a in articles:
        feats, t = extract(a), time_of(a)
        fast, slow = twice(signature.choose_encoded, feats, t, index.rarity)
        assert fast == slow, a.id
        assert signature.encode(signature.decode(fast)) == fast, a.id
        with core_on(True):
            index.add_encoded(_id(a), fast, index.new_story("s-" + a.id))
    assert index.slots == len(articles)


def test_a_crowded_shingle_table_leaves_sketches_whole_in_the_core_and_in_python() -> None:
    """With a few hundred thousand texts in the window, collisions put several counts in every counter of the shingle
    table: a text's own shingles must still be sketched (only what many texts carry is boilerplate), alike in both."""
    rarity = Rarity(WEEK)
    rng = np.random.default_rng(5)
    empty32, empty16 = np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.uint16)
    for _ in range(2000):  # as 200,000 texts' 64 smallest shingles: ~12 counts a counter
        rarity.count(empty32, empty16, rng.integers(0, 2**32, 6400, dtype=np.uint64).astype(np.uint32))
    text = "\n\n".join(f"포항시 {k}번째 문단은 이차전지 특화단지 {k * 7}곳의 준공 일정을 새로 밝혔다." for k in range(30))
    feats = features.extract("포항 이차전지 특화단지 준공", text, "경북일보")
    fast, slow = twice(signature.choose_encoded, feats, 1_780_000_000, rarity)
    assert fast == slow
    assert len(signature.decode(fast).sketch) == signature.SKETCH_K
    boilerplate = feats.pool[:3]  # what hundreds of texts carry is left out still
    rarity.shingles[boilerplate & np.uint32((1 << 20) - 1)] += 300
    assert not set(signature.decode(signature.choose_encoded(feats, 1_780_000_000, rarity)).sketch.tolist()) & set(
        boilerplate.tolist())


@pytest.mark.parametrize("name", DEV_SETS)
def test_adding_encoded_signatures_leaves_the_index_the_core_and_python_build_alike(name: str) -> None:
    """Records, flat arrays, story chains, frequencies, postings (merged and buffered) and ids: all of it."""
    articles, labels = labelled(name)
    scratch = Index(WEEK)
    blobs = []
    for a in articles:  # signatures as a grouper would choose them, with the window's frequencies
        with core_on(True):
            blobs.append(signature.choose_encoded(extract(a), time_of(a), scratch.rarity))
            scratch.add_encoded(_id(a), blobs[-1], scratch.new_story(a.id))
    fast = replay_labelled(articles, labels, True, blobs)
    slow = replay_labelled(articles, labels, False, blobs)
    assert fast.slots == len(articles) and fast.postings._buffered > 0
    state_fast, state_slow = index_state(fast), index_state(slow)
    for key in state_fast:
        assert state_fast[key] == state_slow[key], key


# --- candidates on crowded postings -------------------------------------------------------------------------------


def _spread(keys: np.ndarray) -> np.ndarray:
    """Keys in 7 buckets (top 16 bits) sharing their low 16 bits across buckets."""
    return ((keys % 7) << 16 | (keys // 7)).astype(np.uint32)


def _skewed(rng: np.random.Generator, n: int, kinds: int) -> np.ndarray:
    """``n`` draws of ``kinds`` values, the low ones far commoner (so some keys pass every cap)."""
    return (rng.random(n) ** 2 * kinds).astype(np.int64)


def _probe(rng: np.random.Generator, long: bool) -> Features:
    """A new article made of drawn keys: headline words, other words, a sample (shingle keys before the salt)."""
    head = np.unique(_spread(_skewed(rng, int(rng.integers(0, 12)), 420)))
    words = np.setdiff1d(_spread(_skewed(rng, int(rng.integers(0, 30)), 420)), head)
    sample = np.unique(_spread(_skewed(rng, int(rng.integers(0, 6)), 400)) ^ np.uint32(signature.SHINGLE_SALT))
    empty = np.zeros(0, dtype=np.uint32)
    shingle_count = features.LONG if long else int(rng.integers(0, features.LONG))
    return Features(head=head, head_bigrams=np.zeros(0, dtype=np.uint16), text=words,
                    everything=np.union1d(head, words), figures=empty, head_figures=empty,
                    subject=np.zeros(0, dtype=np.uint16), shingles=np.arange(shingle_count, dtype=np.uint32),
                    pool=empty, sample=sample, outlet=0, has_text=True, roundup=False)  # fmt: skip


def _bare_signature(t: int, keys: np.ndarray) -> Signature:
    """An indexed article that is nothing but its posting keys (counted as its words in the frequencies)."""
    empty32, empty16 = np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.uint16)
    return Signature(t=t, outlet=0, size=0, has_text=False, roundup=False, head=empty32, words=empty32,
                     figures=empty32, bigrams=empty16, subject=empty16, sketch=empty32, keys=keys, reach=255,
                     counted=(np.unique(keys), empty16, empty32))  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(20, 3000), st.integers(1, 128), st.integers(1, 30), st.integers(1, 15))
def test_candidates_match_on_crowded_postings(seed: int, slots: int, limit: int, stories: int, members: int) -> None:
    """Few distinct keys, drawn skewed: keys exceed their caps and the window's common frequency, crowds form,
    the limit cuts, stories are capped and walked for more members; half the postings merged, half buffered."""
    rng = np.random.default_rng(seed)
    index = Index(window_s=1000.0)
    for slot in range(slots):
        story = index.new_story(f"s{slot}") if slot < 3 or rng.random() < 0.3 else int(rng.integers(0, index.stories))
        keys = _spread(_skewed(rng, int(rng.integers(1, 12)), 400))
        index.add(slot, _bare_signature(int(rng.uniform(0, 3000)), keys), story)
        if slot == slots // 2:
            index.postings.merge()
    assert index.postings._buffered > 0
    with mock.patch.multiple(candidates, LIMIT=limit, STORIES=stories, MEMBERS=members):
        for _ in range(6):
            feats, t = _probe(rng, bool(rng.random() < 0.5)), float(rng.uniform(0, 3000))
            fast, slow = twice(candidates.find, index, feats, t)
            assert_same_found(fast, slow, seed, t)
            keys, caps = candidates.query(feats, index)
            assert_same_found(fast, candidates.find_py(index, keys, caps, t, len(keys) - len(feats.sample)), seed)


# --- candidates, evidence and probabilities on real replays -------------------------------------------------------


@pytest.mark.parametrize("name", [*DEV_SETS, "syndication"])
def test_candidates_evidence_and_probabilities_match_at_every_article_of_a_replay(name: str) -> None:
    """Each article, before the grouper (on the core) places it, is looked up both ways: the same candidates
    (``find`` against ``find_py``), the same evidence (``measure``, within 1e-9) and the same probabilities."""
    articles = list(syndication_articles()) if name == "syndication" else dev_articles(name)
    grouper = Grouper()
    index = grouper._index
    compared = 0
    for a in articles:
        feats, t = extract(a), time_of(a)
        found, found_py = twice(candidates.find, index, feats, t)
        assert_same_found(found, found_py, a.id)
        if found.stories:
            fast, slow = twice(evidence.measure, feats, index, found, t)
            for part, f, s in zip(("pairs", "cover", "gram", "dots", "norm2"), fast, slow, strict=True):
                assert_close(f, s, a.id, part)
            with core_on(True):
                ev = evidence.gather(feats, index, found, t)
            with core_on(False):
                ev_py = evidence.gather(feats, index, found, t)
            p, p_py = twice(decision.probabilities, ev)
            assert_close(p, p_py, a.id, "probabilities")
            assert_close(p, decision.probabilities(ev_py), a.id, "probabilities of the Python evidence")
            compared += 1
        with core_on(True):
            grouper.assign(a)
    assert compared >= len(articles) // 4  # most articles meet candidates: the comparisons are not vacuous


# --- whole groupers ------------------------------------------------------------------------------------------------


def story_ids(articles: list[Article], on: bool) -> list[object]:
    """Each placement (story id and merged stories) as it was made, then each story id as resolved at the end."""
    with core_on(on):
        grouper = Grouper()
        placed = [grouper.place(a) for a in articles]
        return [*placed, *(grouper.resolve(p.story_id) for p in placed)]


@pytest.mark.parametrize("name", DEV_SETS)
def test_story_ids_over_a_labelled_dev_set_are_identical(name: str) -> None:
    articles = dev_articles(name)
    fast = story_ids(articles, True)
    assert fast == story_ids(articles, False)
    assert len(set(fast[len(articles) :])) < 0.9 * len(articles)  # articles joined stories
    # Stories were merged (decision.merges) among the headlines and snippets; full texts never merge.
    assert any(p.absorbed for p in fast[: len(articles)]) == (name == "battery_news")  # type: ignore[attr-defined]


def test_story_ids_over_the_extended_syndication_set_are_identical() -> None:
    articles = list(syndication_articles())
    fast = story_ids(articles, True)
    assert fast == story_ids(articles, False)
    assert len(set(fast[len(articles) :])) < len(articles) // 2


def test_story_ids_over_benchmark_articles_are_identical() -> None:
    """The benchmark's generator at a small scale: full-text copies and new stories over an index of 2,000."""
    b = bench()
    articles = [a for a, _ in b.timed_articles(b.Corpus(vocabulary=20_000), 2_000, 300)]
    ids = []
    for on in (True, False):
        with core_on(on):
            grouper = Grouper()
            b.build_index(grouper, b.Corpus(vocabulary=20_000), 2_000, 600)
            ids.append([grouper.assign(a) for a in articles])
    assert ids[0] == ids[1]
    assert sum(story.startswith("s-story") for story in ids[0]) >= len(articles) // 4  # copies joined


def _decision_cases() -> list[tuple[Article, str | None]]:
    """Articles meant to reach each branch of the decision, with the story each must join (None: its own).

    Texts from the benchmark's generator; a copy drops a paragraph and its headline's first two words, and
    adds its outlet's footer. Branches: a long text against a story of one member (the pair model and
    SINGLE_JOIN_AT) and of two (the story model of long texts), one of them from its own outlet; a round-up
    joining only its own copy, and a report never joining a round-up's story; a full text whose sibling
    is a bare headline, and a bare headline weighed by the short model.
    """
    corpus = bench().Corpus(vocabulary=20_000)
    t0 = datetime(2026, 6, 1, 9, 0, tzinfo=timezone.utc)
    cases: list[tuple[Article, str | None]] = []

    def add(key: str, story: int, outlet: str, minutes: int, joins: str | None, title: str | None = None) -> None:
        head, body = corpus.story(story, 2000)
        if joins is not None:
            paras = body.split("\n\n")
            body = "\n\n".join(paras[:1] + paras[2:]) + f"\n\n{outlet} 무단전재 금지"
            head = " ".join(head.split()[2:]) + " 종합"
        cases.append((Article(id=key, source="test", outlet=outlet, url="", title=title or head, text=body,
                              published_at=t0.replace(minute=minutes)), joins))  # fmt: skip

    add("a", 1, "가신문", 0, None)
    add("a-copy", 1, "나일보", 1, "s-a")  # a story of one member
    add("a-same-outlet", 1, "가신문", 2, "s-a")  # a story of two, one of them from the same outlet
    add("r", 2, "라경제", 3, None, "[단신] 지역 소식 모음")  # starts a round-up's story
    add("r-copy", 2, "마방송", 4, "s-r", "[단신] 지역 소식 모음")  # a round-up joins its own copy
    add("b-copy", 2, "바타임스", 5, None, "단신에 실린 보도의 원문")  # a report never joins a round-up's story
    head, _ = corpus.story(3, 2000)
    cases.append((Article(id="h", source="test", outlet="사뉴스", url="", title=head, text="",
                          published_at=t0.replace(minute=6)), None))  # fmt: skip
    add("c", 3, "아일보", 7, "s-h")  # its headline's sibling is a bare headline
    cases.append((Article(id="h-copy", source="test", outlet="자통신", url="", title=head, text="",
                          published_at=t0.replace(minute=8)), "s-h"))  # a bare headline: the short model  # fmt: skip
    return cases


def test_decisions_on_each_branch_match_and_land_where_meant() -> None:
    cases = _decision_cases()
    articles = [a for a, _ in cases]
    expected = [joins or "s-" + a.id for a, joins in cases]
    fast = story_ids(articles, True)
    assert fast == story_ids(articles, False)
    assert [p.story_id for p in fast[: len(articles)]] == expected  # type: ignore[attr-defined]
