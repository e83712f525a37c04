"""Property-based fuzzing of fetch → parse → normalise → match → group with random bytes, feeds and HTML.

Every example is served by the real local HTTP server, fetched by the real Fetcher, parsed by the collector,
extracted and matched by the processor stage and grouped by the grouping stage (state in a real store).
Properties: nothing raises except our own documented errors (a refused body is a ContentError, not a crash);
every example finishes within the deadline (the bound on time per item); a well-formed random feed loses no
entry that names a watched term, and no item is emitted twice.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.batch import Batch
from collectors.fetch import Fetcher
from collectors.html import fetch_article
from collectors.rss import RssCollector
from newsradar.errors import NewsradarError
from newsradar.events import RawItem, StoryUpdate
from newsradar.pipeline import ExtractMatchStage, GroupStage, utcnow
from newsradar.settings import Settings, SourceSettings
from newsradar.store import Store
from tests.reliability.harness import FAST_HTTP, pipeline_settings
from tests.reliability.scorecard import Card
from tests.servers.http import HttpServer

DEADLINE_MS = 3000  # per example: fetch, parse, extract, match and group a whole feed or page


def fuzz(examples: int) -> settings:
    """Bounded examples, a deadline per example, no example database written into the repository."""
    return settings(max_examples=examples, deadline=DEADLINE_MS, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


TYPES = ["application/rss+xml; charset=utf-8", "text/xml", "application/xml; charset=euc-kr", "text/html",
         "application/octet-stream", "text/plain; charset=latin-1"]

# Anything at all (controls, surrogate-free), and "clean" text a real headline could hold.
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
CLEAN_TEXT = st.text(
    st.one_of(st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3),
              st.sampled_from(list("abcXYZ0123456789 .,!?()[]·…'\"-:/*_~`|#@%+="))),
    max_size=40,
)


@dataclass
class Pipe:
    """The real stages, wired once for the module (hypothesis runs many examples per test)."""

    server: HttpServer
    settings: Settings
    store: Store
    fetcher: Fetcher
    processor: ExtractMatchStage
    grouper: GroupStage
    names: Iterator[int] = field(default_factory=itertools.count)

    def source(self, path: str) -> SourceSettings:
        """A fresh source per example, so nothing is skipped as already seen."""
        return SourceSettings(name=f"fuzz-{next(self.names)}", url=self.server.url(path))

    def through(self, raw: RawItem) -> list[StoryUpdate]:
        """Extract, match and group one item exactly as the stages do."""
        updates: list[StoryUpdate] = []
        for _, _, article in self.processor.process(raw):
            updates += [event for _, _, event in self.grouper.process(article)]
        return updates


@dataclass
class Stats:
    examples: int = 0
    refused: int = 0
    items: int = 0
    slowest: float = 0.0
    lost: int = 0
    doubled: int = 0

    def timed(self, started: float) -> None:
        self.examples += 1
        self.slowest = max(self.slowest, time.perf_counter() - started)

    def describe(self) -> str:
        return (f"{self.examples} examples, {self.items} items through every stage, {self.refused} refused with "
                f"our own error, slowest example {self.slowest * 1000:.0f} ms, no unhandled exception")


@pytest.fixture(scope="module")
def pipe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipe]:
    tmp = tmp_path_factory.mktemp("fuzz")
    config = pipeline_settings(tmp, None, [], http={**FAST_HTTP, "max_bytes": 200_000})
    with HttpServer() as server:
        store = Store(Path(config.state_dir) / "state.db")
        fetcher = Fetcher(config.http)
        group = GroupStage.from_settings(config, store)
        pipe = Pipe(server, config, store, fetcher, ExtractMatchStage.from_settings(config), group)
        try:
            yield pipe
        finally:
            group.close()
            fetcher.close()
            store.close()


def _collect(pipe: Pipe, body: bytes, content_type: str) -> Batch | None:
    """Serve ``body`` as a feed and poll it; None when the collector refused it with one of our errors."""
    path = f"/feed-{next(pipe.names)}.xml"
    pipe.server.add(path, body, headers={"Content-Type": content_type})
    try:
        return RssCollector.from_settings(pipe.source(path), pipe.fetcher, pipe.store).collect(utcnow())
    except NewsradarError:
        return None
    finally:
        pipe.server.remove(path)


def run_recorded(check: Callable[[], None], stats: Stats, scorecard: Card, case: str, expected: str) -> None:
    """Run the hypothesis test ``check``; its figures go on the scorecard whether it passes or fails."""
    failure: BaseException | None = None
    try:
        check()
    except BaseException as exc:
        failure = exc
        raise
    finally:
        observed = stats.describe() if failure is None else f"FAILED after {stats.examples} examples: {failure!r}"[:300]
        scorecard.record(case, expected, observed, lost=stats.lost, doubled=stats.doubled)


def test_random_bytes_as_a_feed(pipe: Pipe, scorecard: Card) -> None:
    stats = Stats()

    @fuzz(150)
    @given(body=st.one_of(
        st.binary(max_size=3000),
        st.builds(lambda a, b: b'<?xml version="1.0"?><rss version="2.0"><channel><item><title>' + a
                  + b"</title><link>https://x.example/" + b + b"</link></item></channel></rss>",
                  st.binary(max_size=300), st.binary(max_size=60)),
    ), content_type=st.sampled_from(TYPES))
    def check(body: bytes, content_type: str) -> None:
        started = time.perf_counter()
        batch = _collect(pipe, body, content_type)
        if batch is None:
            stats.refused += 1
        else:
            for item in batch.items:
                pipe.through(item)
            stats.items += len(batch.items)
        stats.timed(started)

    run_recorded(check, stats, scorecard, "fuzz: random bytes as a feed",
                 "no unhandled exception; bounded time per example")


@st.composite
def random_feed(draw: st.DrawFn, clean: bool) -> tuple[bytes, list[str]]:
    """An RSS feed of random entries; returns it and the links of entries whose title names 포항 (clean feeds)."""
    text = CLEAN_TEXT if clean else ANY_TEXT
    uid = draw(st.integers(0, 10**9))
    planted: list[str] = []
    items = []
    for i in range(draw(st.integers(0, 8))):
        link = f"https://news.example.kr/fuzz/{uid}/{i}"
        title = draw(text)
        if draw(st.booleans()):
            title = f"{draw(CLEAN_TEXT)} 포항 {draw(CLEAN_TEXT)}"
            planted.append(link)
        when = draw(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1),
                                 timezones=st.just(timezone.utc)))
        date = format_datetime(when) if clean else draw(st.one_of(st.just(format_datetime(when)), ANY_TEXT))
        shown = link if clean else draw(st.one_of(st.just(link), ANY_TEXT))
        parts = [f"<title>{escape(title)}</title>", f"<link>{escape(shown)}</link>",
                 f"<pubDate>{escape(date)}</pubDate>", f"<description>{escape(draw(text))}</description>"]
        if not clean and draw(st.booleans()):
            parts.append(f"<guid>{escape(draw(ANY_TEXT))}</guid>")
        items.append("<item>" + "".join(draw(st.permutations(parts))) + "</item>")
    feed = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>퍼즈</title>'
            + "".join(items) + "</channel></rss>")
    return feed.encode("utf-8"), planted if clean else []


def _unique_links(pipe: Pipe, body: bytes, planted: list[str]) -> tuple[bytes, list[str]]:
    """Links unique to this example: the grouping state outlives examples, and the same link means the same
    article (a redelivery) to it, whatever hypothesis put in the title this time."""
    prefix = f"/fuzz/x{next(pipe.names)}-"
    return body.replace(b"/fuzz/", prefix.encode()), [link.replace("/fuzz/", prefix) for link in planted]


@pytest.mark.parametrize("clean", [False, True], ids=["messy", "well-formed"])
def test_random_feeds(clean: bool, pipe: Pipe, scorecard: Card) -> None:
    stats = Stats()

    @fuzz(120)
    @given(feed=random_feed(clean))
    def check(feed: tuple[bytes, list[str]]) -> None:
        started = time.perf_counter()
        body, planted = _unique_links(pipe, *feed)
        batch = _collect(pipe, body, TYPES[0])
        if batch is None:
            stats.refused += 1
            assert not planted, "a well-formed feed was refused"
            stats.timed(started)
            return
        ids = [item.id for item in batch.items]
        stats.doubled += len(ids) - len(set(ids))
        relevant = set()
        for item in batch.items:
            if any(u.story.terms and "포항" in u.story.terms for u in pipe.through(item)):
                relevant.add(item.url)
        stats.items += len(batch.items)
        missing = [link for link in planted if link not in relevant]
        stats.lost += len(missing)
        stats.timed(started)
        assert not missing and len(ids) == len(set(ids)), (missing, [i.title for i in batch.items])

    run_recorded(check, stats, scorecard, f"fuzz: random {'well-formed' if clean else 'messy'} feeds",
                 "no unhandled exception; bounded time; " + ("every entry naming 포항 matched and grouped, "
                 "none twice" if clean else "no item emitted twice"))


TAGS = ["p", "div", "span", "a", "b", "article", "section", "table", "td", "li", "ul", "h1", "script", "style",
        "iframe", "noscript", "template", "svg", "form", "nav", "header", "footer", "main", "br", "img", "meta"]
ATTRS = st.dictionaries(st.sampled_from(["id", "class", "href", "style", "src", "content", "property", "onerror"]),
                        ANY_TEXT, max_size=3)


def _element(tag: str, attrs: dict[str, str], children: list[str]) -> str:
    rendered = "".join(f' {k}="{escape(v, {chr(34): "&quot;"})}"' for k, v in attrs.items())
    return f"<{tag}{rendered}>{''.join(children)}</{tag}>"


HTML = st.recursive(
    st.one_of(ANY_TEXT.map(escape), CLEAN_TEXT, st.just("포항 이차전지 특화단지 "), st.just("<!-- 주석 -->"),
              st.sampled_from(["<p>", "</div>", "<br>", "&nbsp;", "&#xD55C;", "&amp;", "<", "]]>", "<![CDATA["])),
    lambda inner: st.builds(_element, st.sampled_from(TAGS), ATTRS, st.lists(inner, max_size=5)),
    max_leaves=40,
)


def test_random_html_pages(pipe: Pipe, scorecard: Card) -> None:
    stats = Stats()

    @fuzz(120)
    @given(body=st.one_of(HTML.map(lambda h: f"<html><head><title>뉴스</title></head><body>{h}</body></html>"
                                          .encode()), st.binary(max_size=3000)),
           content_type=st.sampled_from(["text/html; charset=utf-8", "text/html", "text/html; charset=euc-kr"]))
    def check(body: bytes, content_type: str) -> None:
        started = time.perf_counter()
        path = f"/page-{next(pipe.names)}.html"
        pipe.server.add(path, body, headers={"Content-Type": content_type})
        url = pipe.server.url(path)
        try:
            final, page = fetch_article(pipe.fetcher, url, source="fuzz-html", found_on=url)
        except NewsradarError:
            stats.refused += 1
            stats.timed(started)
            return
        finally:
            pipe.server.remove(path)
        raw = RawItem(id=f"page-{stats.examples}", source="fuzz-html", outlet="퍼즈", url=final, canonical_url=final,
                      title="퍼즈 기사", html=page, fetched_at=utcnow())
        pipe.through(raw)
        stats.items += 1
        stats.timed(started)

    run_recorded(check, stats, scorecard, "fuzz: random HTML pages (and bytes served as HTML)",
                 "no unhandled exception; bounded time per page")
