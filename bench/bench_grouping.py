"""Grouping throughput and memory at scale, beside datasketch's MinHashLSH (128 permutations).

What is measured, exactly:
1. Our index is filled with ``--stories`` synthetic stories (default 1,000,000). Each story is an
   article made by a seeded generator (Zipf-distributed pseudo-Korean words): a headline and a
   ``--index-chars`` long text (default 600: above the full-text threshold, so each gets the same
   stored signature a 2 KB article gets). They are inserted directly (no grouping decision is
   needed to build distinct stories); RSS growth divided by the number of stories is reported as
   bytes per indexed article, with the sum of the index's own arrays beside it. RSS is read after a
   garbage collection and malloc_trim (glibc), for datasketch too: heap pages the allocator holds
   free are not memory in use, and the index's own merges and compactions give them back as well.
2. ``--articles`` 2 KB articles (default 20,000) are then assigned with ``Grouper.assign`` and timed
   on one core: half are fresh stories, half are copies of indexed stories, drawn from the whole index
   (the first ``--ds-articles`` from datasketch's stories, step 3; the story's text
   extended to 2 KB, re-headlined, a paragraph dropped, an outlet footer added), so both the
   "new story" and the "joins a story" paths are exercised. Correctness of the joins is printed.
3. datasketch: a MinHashLSH (threshold 0.5, 128 permutations, 5-character shingles) is built over
   the first ``--ds-stories`` of the same stories (default 100,000: its Python MinHash is too slow
   for a million in minutes) and the first ``--ds-articles`` of the same 2 KB articles (default
   3,000) are MinHashed, queried and inserted. Ours is timed on exactly those articles too. Its
   threshold (0.5 Jaccard) is its usual setting; a 2 KB copy of a 600-character indexed text has a
   Jaccard of about 0.3, so it finds few of the copies: its speed is compared, not its answers.
The load average of the machine is printed before and after: other processes slow both sides.

Run: ``python bench/bench_grouping.py`` (a few minutes) or ``--quick`` (100k stories, seconds).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from newsradar.events import Article  # noqa: E402
from processors.grouping import Grouper, native, passages, signature  # noqa: E402
from processors.grouping.features import extract  # noqa: E402
from processors.grouping.grouper import _id_hash  # noqa: E402
from processors.grouping.signature import SKETCH_K  # noqa: E402

_START = datetime(2026, 6, 1, tzinfo=timezone.utc)
_SYLLABLES = [chr(c) for c in range(0xAC00, 0xD7A4, 7)]  # 1,596 Hangul syllables


class Corpus:
    """Deterministic pseudo-Korean stories: Zipf word frequencies, so rare words are rare."""

    def __init__(self, vocabulary: int = 200_000, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.words = [
            "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 2, 3, 3, 3, 4)))) for _ in range(vocabulary)
        ]
        weights = 1.0 / np.arange(20, vocabulary + 20) ** 1.05  # most common word ~1% of words
        self.cum = np.cumsum(weights / weights.sum())

    def story(self, story_no: int, chars: int) -> tuple[str, str]:
        """Headline and text of a story; the first ``chars`` of its text never change with ``chars``."""
        words = self.words
        heads = (_uniform(story_no, 9, 1) * (len(words) - 2000)).astype(np.int64) + 2000
        title = " ".join(words[i] for i in heads.tolist())
        picks = np.searchsorted(self.cum, _uniform(story_no, chars // 3 + 8, 2)).tolist()  # ~4 chars a word
        tokens = [words[i] for i in picks]
        for i in range(10, len(tokens), 11):
            tokens[i] += "."  # sentences of eleven words, paragraphs of three sentences
        paragraphs = [" ".join(tokens[i : i + 33]) for i in range(0, len(tokens), 33)]
        return title, "\n\n".join(paragraphs)[:chars]


def _uniform(seed: int, n: int, salt: int) -> np.ndarray:
    """``n`` uniform floats for (seed, salt); element i depends only on i (splitmix64), so prefixes agree."""
    with np.errstate(over="ignore"):
        x = np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64((seed * 1_000_003 + salt) << 20)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _rss() -> int:
    """Resident memory now, after a garbage collection and once the allocator has given back the heap pages
    it holds free (what the index's own merges and compactions do: freed pages are not memory in use)."""
    gc.collect()
    native.release_memory()
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _article(key: str, title: str, text: str, minutes: float, outlet: str) -> Article:
    return Article(id=key, source="bench", outlet=outlet, url="", title=title, text=text,
                   published_at=_START + timedelta(minutes=minutes))  # fmt: skip


def build_index(grouper: Grouper, corpus: Corpus, stories: int, chars: int) -> float:
    """Insert ``stories`` synthetic stories directly; returns seconds taken."""
    index = grouper._index
    begin = time.perf_counter()
    span = 6 * 24 * 60  # spread over six days of the seven-day window
    for s in range(stories):
        title, text = corpus.story(s, chars)
        feats = extract(title, text, f"outlet{s % 300}")
        t = int((_START + timedelta(minutes=span * s / stories)).timestamp())
        story = index.new_story(f"s-story{s}")
        trailer, sample, bound = passages.trailer(feats.passage, feats.size)
        blob = signature.choose_encoded(feats, t, index.rarity) + trailer  # as Grouper records and indexes it
        index.add_encoded(_id_hash(f"story{s}"), blob, story, (sample, bound))
        if s and s % 200_000 == 0:
            print(f"  indexed {s:,} stories ({time.perf_counter() - begin:.0f} s)", flush=True)
    index.postings.merge()
    index.ids.merge()
    return time.perf_counter() - begin


def timed_articles(corpus: Corpus, stories: int, count: int) -> list[tuple[Article, str | None]]:
    """2 KB articles: even ones copy an indexed story (expected story id), odd ones are new."""
    rng = random.Random(11)
    out: list[tuple[Article, str | None]] = []
    for i in range(count):
        minutes = 6 * 24 * 60 + i * 0.01
        if i % 2 == 0:
            s = rng.randrange(stories)
            title, text = corpus.story(s, 2200)
            paras = text.split("\n\n")
            if len(paras) > 3:
                del paras[rng.randrange(1, len(paras) - 1)]
            text = "\n\n".join(paras)[:1950] + "\n\n무단전재 및 재배포 금지"
            headline = " ".join(title.split()[2:]) + " 종합"
            out.append((_article(f"copy{i}", headline, text, minutes, f"copier{i % 50}"), f"s-story{s}"))
        else:
            title, text = corpus.story(10_000_000 + i, 2000)
            out.append((_article(f"new{i}", title, text, minutes, f"outlet{i % 300}"), None))
    return out


def run_ours(grouper: Grouper, articles: list[tuple[Article, str | None]]) -> tuple[float, int, int]:
    joined = wrong = 0
    begin = time.perf_counter()
    for article, expected in articles:
        story = grouper.assign(article)
        if expected is not None:
            joined += story == expected
        elif story != "s-" + article.id:
            wrong += 1
    elapsed = time.perf_counter() - begin
    return len(articles) / elapsed, joined, wrong


def run_datasketch(corpus: Corpus, stories: int, chars: int, articles: list[tuple[Article, str | None]]) -> dict:
    try:
        import numpy as np
        from datasketch import MinHash, MinHashLSH
    except ImportError:  # pragma: no cover - optional dependency
        return {"error": "datasketch not installed (pip install 'newsradar[bench]')"}

    def minhash(text: str) -> MinHash:
        compact = "".join(text.split())
        grams = {compact[i : i + 5].encode("utf-8") for i in range(max(1, len(compact) - 4))}
        m = MinHash(num_perm=128)
        m.update_batch(list(grams))
        return m

    gc.collect()
    before = _rss()
    lsh = MinHashLSH(threshold=0.5, num_perm=128)
    begin = time.perf_counter()
    for s in range(stories):
        _, text = corpus.story(s, chars)
        lsh.insert(f"s-story{s}", minhash(text))
    build = time.perf_counter() - begin
    grown = _rss() - before
    begin = time.perf_counter()
    joined = 0
    for article, expected in articles:
        m = minhash(article.text)
        found = lsh.query(m)
        joined += expected is not None and expected in found
        lsh.insert("s-" + article.id, m)
    rate = len(articles) / (time.perf_counter() - begin)
    del lsh
    _ = np
    return {"build_s": build, "bytes_per_item": grown / stories, "rate": rate, "joined": joined}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=1_000_000, help="stories in our index")
    parser.add_argument("--articles", type=int, default=20_000, help="2 KB articles assigned and timed")
    parser.add_argument("--index-chars", type=int, default=600, help="text length of indexed stories")
    parser.add_argument("--ds-stories", type=int, default=100_000, help="stories in the datasketch index")
    parser.add_argument("--ds-articles", type=int, default=3_000, help="articles timed through datasketch")
    parser.add_argument("--quick", action="store_true", help="100k stories, 5k articles, 20k/1k for datasketch")
    args = parser.parse_args()
    if args.quick:
        args.stories, args.articles, args.ds_stories, args.ds_articles = 100_000, 5_000, 20_000, 1_000
    corpus = Corpus()
    # The datasketch comparison's copies come from the stories datasketch indexes (its first ds_stories); ours are
    # copies of any indexed story: a copy of one indexed when the window was already crowded must join too.
    ds_set = timed_articles(corpus, min(args.stories, args.ds_stories), args.ds_articles)
    articles = ds_set + timed_articles(corpus, args.stories, args.articles)[args.ds_articles :]
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    print(f"grouping benchmark: {args.stories:,} indexed stories, {args.articles:,} timed 2 KB articles "
          f"(mean {sum(len(a.text) for a, _ in articles) / len(articles):,.0f} chars), sketch k={SKETCH_K}")  # fmt: skip

    before = _rss()
    grouper = Grouper(window=timedelta(days=7))
    build = build_index(grouper, corpus, args.stories, args.index_chars)
    grown = _rss() - before
    arrays = grouper._index.nbytes()
    print(f"ours: built in {build:.0f} s; RSS +{grown / 2**20:,.0f} MiB = {grown / args.stories:,.0f} bytes per indexed "
          f"article (index arrays {arrays / args.stories:,.0f} B/article)")  # fmt: skip
    ours_rate_ds, _, _ = run_ours(grouper, ds_set)
    rate, joined, wrong = run_ours(grouper, articles[args.ds_articles :])
    copies = sum(1 for _, e in articles[args.ds_articles :] if e is not None)
    print(f"ours: {rate:,.0f} articles/s over {len(articles) - args.ds_articles:,} articles "
          f"(copies joined {joined}/{copies}, new articles wrongly joined {wrong}); "
          f"{ours_rate_ds:,.0f} articles/s on the {len(ds_set):,} datasketch articles")  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    del grouper
    gc.collect()

    ds = run_datasketch(corpus, args.ds_stories, args.index_chars, ds_set)
    if "error" in ds:
        print(f"datasketch: {ds['error']}")
        return
    ds_copies = sum(1 for _, e in ds_set if e is not None)
    print(f"datasketch MinHashLSH(128 perms, threshold 0.5): built {args.ds_stories:,} in {ds['build_s']:.0f} s; "
          f"{ds['bytes_per_item']:,.0f} bytes per indexed item; {ds['rate']:,.0f} articles/s "
          f"(copies found {ds['joined']}/{ds_copies})")  # fmt: skip
    print(f"ratio (same {len(ds_set):,} articles): ours {ours_rate_ds:,.0f}/s vs datasketch {ds['rate']:,.0f}/s "
          f"= {ours_rate_ds / ds['rate']:.1f}x; peak RSS {peak / 2**20:,.0f} MiB")  # fmt: skip
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
