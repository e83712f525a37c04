"""Grouping and classify speed on real news streams, and as the index grows; prints figures, asserts nothing.

The streams, read from ../shared/corpus when the bench runs (they are not ours to copy into the repo):
- ``june``: battery_news/news-until-2026-06-30.json, 3,633 real Google News and Naver items of June 2026
  (headlines and snippets), in publication order; the outlet as the feeds give it (Google's " - outlet"
  suffix, else the article's host), as the collectors do.
- ``fulltext``: fulltext_news/dev.jsonl, 1,335 real full texts of one day from 42 outlets.

What is measured, exactly (CPU seconds of this one process: one core):
1. **grouper alone**: ``Grouper.assign`` of every item of a stream into a fresh grouper; the median of
   ``--repeats`` runs. Beside it, the baseline: the same run on the pure-Python path of the same code
   (``native.enabled = False``, the reference the compiled core is tested against), and the ratio.
2. **classify end to end**: ``Classifier.classify`` of every item as a classify input line (extraction,
   normalisation, watchlist matching, grouping), startup (settings, matcher, grouper) excluded and, on
   its own line, included.
3. **growth**: the june stream repeated with new ids, each pass shifted by the stream's span plus a day,
   until ``--grow`` items (default 100,000), into one grouper whose window holds them all (nothing is
   evicted, so the index grows to every item). Each pass after the first is disguised as other news of
   the same shape: every Hangul syllable mapped by a bijection of its own (``disguise``), so word lengths,
   frequencies, copies and figures stay what they are, but a pass's events are not the earlier passes'
   (repeated verbatim, every item would join its twin of a month before, and stories would only grow).
   Articles/s of each tenth, the index's own bytes and the process's resident memory (after a collection
   and malloc_trim) per indexed article.

Run: ``.venv/bin/python bench/bench_real.py`` (about a minute) or ``--quick`` (one repeat, 20,000 items).
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from newsradar.classify import Classifier  # noqa: E402
from newsradar.events import Article  # noqa: E402
from newsradar.settings import load as load_settings  # noqa: E402
from processors.grouping import Grouper, native  # noqa: E402

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
JUNE = CORPUS / "battery_news" / "news-until-2026-06-30.json"
FULLTEXT = CORPUS / "fulltext_news" / "dev.jsonl"
CONFIG = Path(__file__).resolve().parents[1] / "config" / "default.yaml"


def june_records() -> list[dict[str, Any]]:
    """The June file as classify input lines, in publication order."""
    items = json.loads(JUNE.read_text(encoding="utf-8"))["articles"]
    items.sort(key=lambda r: r["published"])
    out = []
    for r in items:
        title = r["title"]
        if r.get("source") == "구글" and " - " in title:
            outlet = title.rsplit(" - ", 1)[1]
        else:
            outlet = urlparse(r["url"]).netloc.removeprefix("www.")
        out.append({"id": r["id"], "url": r["url"], "outlet": outlet, "title": title,
                    "text": r.get("summary") or "", "published": r["published"]})  # fmt: skip
    return out


def fulltext_records() -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in FULLTEXT.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows.sort(key=lambda r: r["published"])
    return [{k: r.get(k) for k in ("id", "url", "outlet", "title", "text", "published")} for r in rows]


def article(record: dict[str, Any]) -> Article:
    return Article(id=record["id"], source="bench", outlet=record["outlet"] or "", url=record["url"] or "",
                   title=record["title"], text=record["text"] or "",
                   published_at=datetime.fromisoformat(record["published"]))  # fmt: skip


def cpu(run: Callable[[], None]) -> float:
    gc.collect()
    start = time.process_time()
    run()
    return time.process_time() - start


def group_all(articles: list[Article]) -> Callable[[], None]:
    def run() -> None:
        grouper = Grouper()
        for a in articles:
            grouper.assign(a)
        grouper.close()

    return run


def grouper_alone(name: str, articles: list[Article], repeats: int) -> None:
    fast = statistics.median(cpu(group_all(articles)) for _ in range(repeats))
    native.enabled = False
    try:
        slow = cpu(group_all(articles))
    finally:
        native.enabled = True
    n = len(articles)
    print(f"{name:9} grouper alone   {n / fast:9,.0f} articles/s   baseline (pure-Python path) {n / slow:7,.0f}/s"
          f"   ratio {slow / fast:5.1f}x   ({n:,} items, median of {repeats})")  # fmt: skip


def classify_all(name: str, records: list[dict[str, Any]], repeats: int) -> None:
    settings = load_settings(CONFIG)
    times, whole = [], []
    for _ in range(repeats):
        gc.collect()
        start = time.process_time()
        classifier = Classifier(settings)
        ready = time.process_time()
        outputs = [classifier.classify(r) for r in records]
        classifier.settle(outputs)
        end = time.process_time()
        classifier.close()
        times.append(end - ready)
        whole.append(end - start)
    n = len(records)
    relevant = sum(o["relevant"] for o in outputs)
    print(f"{name:9} classify        {n / statistics.median(times):9,.0f} items/s      "
          f"with startup {n / statistics.median(whole):,.0f}/s   ({relevant:,} of {n:,} relevant)")


_SYLLABLES = 11172  # Hangul syllables U+AC00..U+D7A3


def disguise(text: str, n: int) -> str:
    """``text`` with every Hangul syllable mapped by the ``n``-th bijection (0: unchanged)."""
    return text.translate(_bijection(n)) if n else text


@functools.cache
def _bijection(n: int) -> dict[int, int]:
    a, b = 1 + 6 * n, 977 * n  # 11,172 = 2^2 * 3 * 7^2 * 19; 1 + 6n is odd and no multiple of 3
    while a % 7 == 0 or a % 19 == 0:
        a += 6
    return {c: 0xAC00 + ((c - 0xAC00) * a + b) % _SYLLABLES for c in range(0xAC00, 0xAC00 + _SYLLABLES)}


def rss() -> int:
    gc.collect()
    native.release_memory()
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def growth(records: list[dict[str, Any]], total: int) -> None:
    base = [article(r) for r in records]
    span = base[-1].published_at - base[0].published_at + timedelta(days=1)  # type: ignore[operator]
    passes = -(-total // len(base))
    grouper = Grouper(window=span * (passes + 1))
    for p in range(passes):
        _bijection(p)  # built before the memory is read
    before = rss()
    chunk = max(1, total // 10)
    done, spent, laps = 0, 0.0, []
    for p in range(passes):
        for a in base:
            if done == total:
                break
            item = replace(a, id=f"{a.id}-{p}", title=disguise(a.title, p), text=disguise(a.text, p),
                           outlet=disguise(a.outlet, p), published_at=a.published_at + p * span)  # type: ignore[operator]
            start = time.process_time()
            grouper.assign(item)
            spent += time.process_time() - start
            done += 1
            if done % chunk == 0:
                laps.append(chunk / spent)
                stats = grouper.stats()
                grown = rss() - before
                print(f"  growth {done:9,} indexed: {laps[-1]:8,.0f} articles/s   index {stats['bytes'] / done:5.0f} B"
                      f"/article   resident +{grown / 2**20:6.1f} MiB ({grown / done:5.0f} B/article)"
                      f"   {stats['stories']:,} stories")  # fmt: skip
                spent = 0.0
    print(f"june x{passes}  growth to {done:,}: median {statistics.median(laps):,.0f} articles/s, "
          f"slowest tenth {min(laps):,.0f}/s")
    grouper.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (the median is printed)")
    parser.add_argument("--grow", type=int, default=100_000, help="items in the growth run")
    parser.add_argument("--quick", action="store_true", help="one repeat and 20,000 items of growth")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.grow = 1, min(args.grow, 20_000)
    if not JUNE.is_file() or not FULLTEXT.is_file():
        print(f"real streams not found under {CORPUS} (the shared folder beside the repo)", file=sys.stderr)
        return 2
    print(f"compiled core: {'on' if native.active() else 'OFF'}; rates are per CPU second of one process (one core)")
    streams = {"june": june_records(), "fulltext": fulltext_records()}
    for name, records in streams.items():
        grouper_alone(name, [article(r) for r in records], args.repeats)
    for name, records in streams.items():
        classify_all(name, records, args.repeats)
    growth(streams["june"], args.grow)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
