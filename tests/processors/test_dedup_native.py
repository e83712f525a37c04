"""The compiled grouping core gives exactly what the pure-Python path gives: features of many texts
(odd Unicode included), and the story ids of whole labelled files and of the benchmark's articles."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsradar.events import Article
from processors import dedup_native
from processors import dedup_text as text
from processors.dedup import Grouper

ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT / ".." / "shared" / "corpus" / "battery_news" / "dev.jsonl"


@contextmanager
def native(on: bool) -> Iterator[None]:
    saved = dedup_native.enabled
    dedup_native.enabled = on
    try:
        yield
    finally:
        dedup_native.enabled = saved


def _dev_articles() -> list[Article]:
    if not DEV.is_file():
        pytest.skip(f"labelled dev set not found at {DEV} (the shared folder beside the repo)")
    rows = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [
        Article(id=r["id"], source=r["source"], outlet=r["outlet"] or "", url=r["url"], title=r["title"],
                text=r["text"] or "", published_at=datetime.fromisoformat(r["published"]) if r.get("published") else None)
        for r in rows
    ]  # fmt: skip


def _syndication_articles() -> list[Article]:
    path = ROOT / "tests" / "data" / "syndication" / "generate.py"
    spec = importlib.util.spec_from_file_location("syndication_generate_native", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return [c.article for c in module.syndication_set()]


def _bench_articles() -> tuple[object, list[Article]]:
    spec = importlib.util.spec_from_file_location("bench_grouping_native", ROOT / "bench" / "bench_grouping.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench, [a for a, _ in bench.timed_articles(bench.Corpus(vocabulary=20_000), 2_000, 600)]


def test_the_core_is_built() -> None:
    """CI builds it with `make setup`; a silent fallback would hide a broken build."""
    assert dedup_native.core is not None
    assert dedup_native.enabled


def _python_words(raw: str, cut: bool) -> tuple[list[int], list[int]]:
    found = text.words(raw, cut)
    return list(text.forms(found)), list(text.bigrams(found))


def _assert_same_words(raw: str) -> None:
    assert dedup_native.core is not None
    for cut in (False, True):
        forms, bigrams, forms_sorted, bigrams_sorted = dedup_native.core.word_features(text._norm(raw), cut, True)
        # Same values, and the same iteration order (the sets were filled in the same order).
        assert (list(forms), list(bigrams)) == _python_words(raw, cut), (raw, cut)
        assert np.frombuffer(forms_sorted, np.uint32).tolist() == sorted(forms), (raw, cut)
        assert np.frombuffer(bigrams_sorted, np.uint32).tolist() == sorted(bigrams), (raw, cut)
    _assert_same_shingles(raw)


def _assert_same_shingles(raw: str, wants: tuple[int, ...] = (32,)) -> None:
    """The core's distinct shingle hashes are Python's (in any order, each once), its pools Python's."""
    assert dedup_native.core is not None
    expected, _ = text.shingle_hashes_py(raw)
    for want in wants:
        distinct, pool = (np.frombuffer(b, np.uint32) for b in dedup_native.core.shingles(raw, want))
        assert len(np.unique(distinct)) == len(distinct), raw
        assert np.array_equal(np.sort(distinct), expected), raw
        assert np.array_equal(pool, expected[:want]), (raw, want)


_ODD = st.characters(codec=None, categories=None, exclude_categories=("Cs",))
_KOREAN = st.sampled_from(list("가나다포항시는에서으로의이가를라브4RAV٣٤.,%㎞ｋｍ１２３ＡＢ　 \n\t…-[]") + ["400억", "에서는"])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_ODD, _KOREAN), max_size=60).map("".join))
def test_word_and_shingle_features_match_on_odd_unicode(raw: str) -> None:
    _assert_same_words(raw)


def test_word_features_match_with_lone_surrogates_and_long_words() -> None:
    for raw in ("가\ud800나다라마바사아자차", "a" * 1000 + " 가" * 300, "가" * 600, "1.2.3,4억원대 rav4x 9٣"):
        _assert_same_words(raw)


def test_shingle_pools_of_long_texts_match_for_any_pool_size() -> None:
    """Long texts take the core's threshold selection, small pools its retry with a wider threshold."""
    bench, _ = _bench_articles()
    corpus = bench.Corpus(vocabulary=5_000)  # type: ignore[attr-defined]
    texts = [corpus.story(s, chars)[1] for s in range(40) for chars in (300, 2_000, 9_000)]
    texts += ["포항시 이차전지 특화단지 " * 200, "가나다라마바사아자차" * 3]  # repeats: few distinct shingles
    texts.append(corpus.story(99, 60_000)[1])  # beyond the core's kept table: a table of its own
    for raw in texts:
        _assert_same_shingles(raw, wants=(0, 1, 2, 3, 16, 32, 200, 5_000))


def test_features_of_every_labelled_and_syndicated_article_match() -> None:
    articles = _dev_articles() + _syndication_articles()
    for a in articles:
        _assert_same_words(a.title)
        _assert_same_words(a.text)
        with native(True):
            fast = text.extract(a.title, a.text, a.outlet)
        with native(False):
            slow = text.extract(a.title, a.text, a.outlet)
        for name in ("title", "title_bigrams", "body"):
            assert list(getattr(fast, name)) == list(getattr(slow, name)), (a.id, name)
        assert fast.packed is not None and slow.packed is None  # what the core reads instead of the sets
        packed = [np.frombuffer(p, np.uint32).tolist() for p in fast.packed]
        assert packed == [sorted(slow.title), sorted(slow.body), sorted(slow.title_bigrams)], a.id
        assert (fast.has_body, fast.outlet) == (slow.has_body, slow.outlet)
        assert (fast.shingles is None) == (slow.shingles is None) and (fast.pool is None) == (slow.pool is None)
        if fast.shingles is not None:  # the core's distinct hashes come in first-seen order, Python's sorted
            assert np.array_equal(np.sort(fast.shingles), slow.shingles) and np.array_equal(fast.pool, slow.pool), a.id


def _story_ids(articles: list[Article], on: bool) -> list[object]:
    """Each placement (story id and merged stories) as it was made, then each story id as resolved at the end."""
    with native(on):
        grouper = Grouper()
        placed = [grouper.place(a) for a in articles]
        return [*placed, *(grouper.resolve(p.story_id) for p in placed)]


def test_story_ids_over_the_labelled_dev_set_are_identical() -> None:
    articles = _dev_articles()
    assert _story_ids(articles, True) == _story_ids(articles, False)


def test_story_ids_over_the_syndication_set_are_identical() -> None:
    articles = _syndication_articles()
    assert _story_ids(articles, True) == _story_ids(articles, False)


def test_story_ids_over_benchmark_articles_are_identical() -> None:
    """The benchmark's generator at a small scale: full-text copies and new stories over an index."""
    bench, articles = _bench_articles()
    ids = []
    for on in (True, False):
        with native(on):
            grouper = Grouper()
            bench.build_index(grouper, bench.Corpus(vocabulary=20_000), 2_000, 600)  # type: ignore[attr-defined]
            ids.append([grouper.assign(a) for a in articles])
    assert ids[0] == ids[1]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(20, 3000), st.integers(1, 300))
def test_candidates_and_counts_match_on_crowded_postings(seed: int, slots: int, limit: int) -> None:
    """Few distinct keys, so keys exceed their caps, crowds form, the limit cuts and sketches drop common
    shingles; half merged, half buffered.

    The keys sit in 7 buckets (top 16 bits) and share their low 16 bits across buckets.
    """
    from processors.dedup_index import Index

    def spread(keys: np.ndarray) -> list[int]:
        return (((keys % 7) << 16) | (keys // 7)).tolist()

    rng = np.random.default_rng(seed)
    index = Index(window_s=1000.0)
    for slot in range(slots):
        index.cols["t"].append(int(rng.uniform(0, 3000)))
        index.postings.add(spread(rng.integers(0, 400, size=int(rng.integers(1, 12)))), slot)
        if slot == slots // 2:
            index.postings.merge()
    for _ in range(5):
        words = spread(rng.integers(0, 420, size=int(rng.integers(0, 30))))
        shingles = [k ^ 0x5BD1E995 for k in spread(rng.integers(0, 400, size=int(rng.integers(0, 3))))]
        t = float(rng.uniform(0, 3000))
        with native(True):
            fast = index.candidates(words, shingles, t, limit)
            fast_counts = index.postings.count(np.asarray(words, dtype=np.uint32)).tolist()
        with native(False):
            slow = index.candidates(words, shingles, t, limit)
            slow_counts = index.postings.count(np.asarray(words, dtype=np.uint32)).tolist()
        assert fast == slow
        assert fast_counts == slow_counts
        pool = np.unique(np.asarray([k ^ 0x5BD1E995 for k in spread(rng.integers(0, 420, size=40))], dtype=np.uint32))
        with native(True):
            fast_sketch = index.sketch_of(pool, 16).tolist()
        with native(False):
            slow_sketch = index.sketch_of(pool, 16).tolist()
        assert fast_sketch == slow_sketch
    ids = index.ids
    for slot in range(slots):
        ids.add([int(rng.integers(0, 2**64 - 1, dtype=np.uint64)) if slot % 3 else slot % 50], slot)
        if slot == slots // 2:
            ids.merge()
    for key in [*range(60), *ids.keys[:20].tolist(), 2**64 - 1]:
        with native(True):
            fast_id = ids.first(key)
        with native(False):
            slow_id = ids.first(key)
        assert fast_id == slow_id


def test_buffered_ids_are_left_out_of_garbage_collection() -> None:
    """The id table's buffered lists hold only ints; tracked, every full collection would walk thousands of them.

    (The postings buffer their entries in flat arrays: nothing there for the collector.)
    """
    import gc

    from processors.dedup_index import Index

    index = Index(window_s=1000.0)
    with native(True):
        index.ids.add([2**63 + 5], 0)
        index.ids.add([7], 1)
        index.ids.add([7], 2)
    buckets = list(index.ids._buffer.values())
    assert [len(b) for b in buckets] == [1, 2]
    assert not any(gc.is_tracked(b) for b in buckets)


def _full_text_cases() -> list[tuple[Article, str | None]]:
    """Full texts meant to reach each branch of the compiled full-text decision, with the story each must join
    (None: a story of its own). Texts from the benchmark's generator; copies drop a paragraph and re-headline."""
    bench, _ = _bench_articles()
    corpus = bench.Corpus(vocabulary=20_000)  # type: ignore[attr-defined]
    t0 = datetime(2026, 6, 1, 9, 0, tzinfo=timezone.utc)
    cases: list[tuple[Article, str | None]] = []

    def add(key: str, story: int, outlet: str, minutes: int, joins: str | None, title: str | None = None) -> None:
        head, body = corpus.story(story, 2000)
        if joins is not None:  # a copy: another headline, a paragraph dropped, the outlet's footer
            paras = body.split("\n\n")
            body = "\n\n".join(paras[:1] + paras[2:]) + f"\n\n{outlet} 무단전재 금지"
        cases.append((Article(id=key, source="test", outlet=outlet, url="", title=title or head, text=body,
                              published_at=t0.replace(minute=minutes)), joins))  # fmt: skip

    add("a", 1, "가신문", 0, None)
    add("a-copy", 1, "나일보", 1, "s-a", "다른 제목으로 옮겨 실은 기사")  # decided by the core: a copy
    add("a-same-outlet", 1, "가신문", 2, "s-a", "다른 제목으로 옮겨 실은 기사")  # same outlet: headlines decide
    add("r", 2, "라경제", 3, None, "[단신] 지역 소식 모음")  # starts a round-up's story
    add("r-copy", 2, "마방송", 4, "s-r", "[단신] 지역 소식 모음")  # a round-up joins its own copy
    add("b-copy", 2, "바타임스", 5, None, "단신에 실린 보도의 원문")  # a report never joins a round-up's story
    head, _ = corpus.story(3, 2000)
    cases.append((Article(id="h", source="test", outlet="사뉴스", url="", title=head, text="",
                          published_at=t0.replace(minute=6)), None))  # fmt: skip
    add("c", 3, "아일보", 7, "s-h")  # its headline's sibling is a bare headline: the full model decides
    return cases


def _placed_and_weighed(cases: list[tuple[Article, str | None]], on: bool) -> tuple[list[str], list[str]]:
    """The story of each article, and the articles the full model (``_weigh``) decided."""
    weighed: list[str] = []
    with native(on):
        grouper = Grouper()
        original = grouper._weigh

        def weigh(feats: text.Features, sketch: np.ndarray, size: int, t: float, roundup: bool) -> object:
            weighed.append(current[0])
            return original(feats, sketch, size, t, roundup)

        grouper._weigh = weigh  # type: ignore[method-assign,assignment]
        current = [""]
        placed = []
        for article, _ in cases:
            current[0] = article.id
            placed.append(grouper.assign(article))
    return placed, weighed


def test_full_text_decisions_of_the_core_match_python_and_hand_back_what_it_cannot_decide() -> None:
    cases = _full_text_cases()
    expected = [joins or "s-" + a.id for a, joins in cases]
    fast, slow = _placed_and_weighed(cases, True), _placed_and_weighed(cases, False)
    assert fast[0] == slow[0] == expected
    # A bare headline is weighed by the full model; of the full texts, only the same-outlet copy and the one
    # whose candidate is a bare headline are handed back.
    assert fast[1] == slow[1] == ["a-same-outlet", "h", "c"]
