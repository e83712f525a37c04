"""Hostile sources through the whole pipeline: each beside a healthy source, in one sweep of the real daemon.

For every case: the hostile source's problem is logged naming the source, it is counted in the daemon's
metrics, the healthy source's story still reaches the Slack stand-in exactly once, and so do the hostile
source's own good items. The fetch-level behaviour (caps, deadlines) is tested in tests/collectors; this is
the layer above: nothing a stranger's server does may cost us another source's story or crash the sweep.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from collectors.fetch import Fetcher
from collectors.rss import RssCollector
from newsradar.pipeline import utcnow
from newsradar.settings import Settings
from newsradar.store import Store
from tests.reliability.harness import healthy_source, logged, pipeline_settings, run_once, tally
from tests.reliability.news import (
    BASE,
    HEALTHY,
    KST,
    RELEVANT,
    XML,
    Entry,
    dated,
    no_date,
    no_link,
    rss,
    with_guid,
)
from tests.reliability.scorecard import Card
from tests.servers.http import HttpServer, gzip_bomb, repeat_bytes
from tests.servers.slack import SlackStandIn

FEED = "/hostile.xml"

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY a "hahahahahahahahahaha">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
 <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
 <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
 <!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
 <!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">
 <!ENTITY i "&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;">
]>
<rss version="2.0"><channel><title>&i;</title>
<item><title>포항 이차전지 &i;</title><link>https://evil.example/1</link><description>&i;</description></item>
</channel></rss>""".encode()


def xxe_feed(server: HttpServer) -> bytes:
    """External entities pointing at a local file and at a URL we can watch for (it must never be fetched)."""
    return f"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY local SYSTEM "file:///etc/passwd">
 <!ENTITY remote SYSTEM "{server.url('/xxe-secret')}">
]>
<rss version="2.0"><channel><title>외부 개체</title>
<item><title>포항 이차전지 &local;</title><link>https://evil.example/2</link>
<description>&remote;</description></item></channel></rss>""".encode()


@functools.lru_cache(maxsize=1)
def bomb() -> bytes:
    """~200 KB of gzip inflating to 200 MB (the cap is 1 MB)."""
    return gzip_bomb(200_000_000)


@dataclass(frozen=True)
class Case:
    """One hostile RSS source: how it is served, what must be logged, and which of its items must still flow."""

    id: str
    expected: str
    serve: Callable[[HttpServer], None]
    problem: str  # must appear, with the source name, in a log line at ``level`` or above
    flows: tuple[Entry, ...] = ()
    metric: str = "errors"  # counter of the source's component that must have moved
    level: int = logging.WARNING
    never_requested: tuple[str, ...] = ()


def _feed(entries: list[Entry], *, content_type: str = XML["Content-Type"], declared: str = "utf-8",
          encoding: str = "utf-8", mangle: Callable[[bytes], bytes] = lambda b: b) -> Callable[[HttpServer], None]:
    """Serve ``entries`` as a feed whose XML declaration says ``declared`` and whose bytes are ``encoding``."""

    def serve(server: HttpServer) -> None:
        body = mangle(rss(entries, encoding=declared).encode(encoding))
        server.add(FEED, body, headers={"Content-Type": content_type})
    return serve


def _invalid_bytes(body: bytes) -> bytes:
    # Broken bytes inside an unrelated item's text: the feed declares UTF-8 and mostly is.
    return body.replace("노선을".encode(), "노선".encode() + b"\xff\xfe\xc0\xaf" + "을".encode())


FUTURE = datetime.now(KST) + timedelta(days=30)
FILLER = Entry("시내버스", "대구 3번 시내버스 노선 조정 안내", "대구시는 3번 시내버스 노선을 4개 정류장 조정한다고 밝혔다.",
               outlet="대구일보", slug="bus-3", minutes=5)

CASES = [
    Case("billion-laughs", "refused before parsing (entity declarations); other sources flow",
         lambda s: s.add(FEED, BILLION_LAUGHS, headers=XML), "<!ENTITY>"),
    Case("external-entity", "refused before parsing; the entity's URL and file are never read",
         lambda s: s.add(FEED, xxe_feed(s), headers=XML), "<!ENTITY>", never_requested=("/xxe-secret",)),
    Case("100-mb-body", "cut at the 1 MB cap while streaming; other sources flow",
         lambda s: s.add(FEED, repeat_bytes(100_000_000), headers=XML), "cap"),
    Case("gzip-bomb", "refused by the cap on the decompressed size (200 MB inflated from 200 KB)",
         lambda s: s.add(FEED, bomb(), headers={**XML, "Content-Encoding": "gzip"}), "decompressed"),
    # A byte every 0.25 s: each read beats the 1 s read timeout, so only the total deadline can stop it
    # (at one byte a second the two timers raced on a loaded machine).
    Case("drip-4-bytes-per-second", "cut off by the 2 s total deadline",
         lambda s: s.add(FEED, rss([RELEVANT[0]]).encode(), headers=XML, drip_bytes_per_sec=4),
         "no complete response within"),
    Case("never-answers", "cut off by the 1 s read timeout",
         lambda s: s.add(FEED, b"", never_answer=True), "timed out"),
    Case("invalid-bytes-in-declared-charset", "bad bytes replaced, counted and logged; the feed's items flow",
         _feed([FILLER, RELEVANT[0]], mangle=_invalid_bytes), "undecodable", flows=(RELEVANT[0],)),
    Case("utf8-declared-euc-kr", "the declared charset does not fit: decoded as UTF-8, logged; items flow",
         _feed([RELEVANT[0]], content_type="application/rss+xml; charset=euc-kr", declared="euc-kr"),
         "does not fit", flows=(RELEVANT[0],)),
    Case("cp949-declared-utf8", "the declared charset does not fit: detected as CP949, logged; items flow",
         _feed([RELEVANT[0], RELEVANT[1]], encoding="cp949"), "does not fit", flows=(RELEVANT[0], RELEVANT[1])),
    Case("item-without-link", "the item is skipped with a logged error; the others flow",
         _feed([no_link(RELEVANT[0]), RELEVANT[1]]), "has no link", flows=(RELEVANT[1],)),
    Case("item-without-date", "the item flows (ordered by fetch time); noted in the log, counted",
         _feed([no_date(RELEVANT[0]), RELEVANT[1]]), "no date", flows=(RELEVANT[0], RELEVANT[1]),
         metric="flagged:undated", level=logging.INFO),
    Case("item-dated-30-days-ahead", "the item flows with the fetch time as its date; logged",
         _feed([dated(RELEVANT[0], FUTURE), RELEVANT[1]]), "in the future", flows=(RELEVANT[0], RELEVANT[1])),
    Case("duplicate-guids", "a repeated guid is one item: alerted once; the repeat is logged and counted",
         _feed([with_guid(RELEVANT[0], "g-1"), with_guid(RELEVANT[0], "g-1"), with_guid(RELEVANT[2], "g-1"),
                with_guid(RELEVANT[1], "g-2")]),
         "repeat", flows=(RELEVANT[0], RELEVANT[1])),
    Case("redirect-loop", "stopped at the loop with a permanent error; other sources flow",
         lambda s: (s.add(FEED, redirect_to="/loop-a"), s.add("/loop-a", redirect_to="/loop-b"),
                    s.add("/loop-b", redirect_to="/loop-a")), "redirect loop"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_feed_is_contained_and_everything_else_flows(
    case: Case, tmp_path: Path, http_server: HttpServer, slack_server: SlackStandIn, slack_env: None,
    caplog: pytest.LogCaptureFixture, scorecard: Card,
) -> None:
    name = f"hostile-{case.id}"
    case.serve(http_server)
    hostile = {"name": name, "url": http_server.url(FEED)}
    settings = pipeline_settings(tmp_path, slack_server, [hostile, healthy_source(http_server)])

    run = run_once(settings)

    counted = run.counts(f"source:{name}").get(case.metric, 0)
    lines = logged(caplog, name, case.problem, level=case.level)
    result = tally(slack_server, [HEALTHY.key, *(e.key for e in case.flows)])
    scorecard.record(f"source: {case.id}", case.expected,
                     f"logged: {bool(lines)}, {case.metric} counted: {counted}, {result.describe()}",
                     lost=result.lost, doubled=result.doubled)
    assert lines, f"no log line naming {name!r} and {case.problem!r}: {logged(caplog, name, level=logging.INFO)}"
    assert counted >= 1, run.component(f"source:{name}")
    assert result.counts == {k: 1 for k in result.counts}, result
    assert result.noise == 0, [c.params.get("text") for c in slack_server.posts]
    assert run.summary("healthy").error is None and run.summary("healthy").new_items == 1
    for path in case.never_requested:
        assert http_server.hits(path) == 0, f"{path} was fetched"


def test_feed_of_10000_items_is_capped_per_poll_and_the_rest_follow(
    tmp_path: Path, http_server: HttpServer, slack_server: SlackStandIn, slack_env: None,
    caplog: pytest.LogCaptureFixture, scorecard: Card,
) -> None:
    name = "hostile-10000-items"
    http_server.add(FEED, _huge_feed(9_998, [RELEVANT[0], RELEVANT[1]]), headers=XML, etag='"huge-v1"')
    hostile = {"name": name, "url": http_server.url(FEED)}
    settings = pipeline_settings(tmp_path, slack_server, [hostile, healthy_source(http_server)],
                                 http={"max_bytes": 10_000_000})

    run = run_once(settings)
    first = run.summary(name).new_items
    lines = logged(caplog, name, "keeping the 500 newest")
    # The next poll brings the next 500 (the capped ones were neither marked seen nor hidden behind a 304).
    store = Store(Path(settings.state_dir) / "state.db")
    fetcher = Fetcher(settings.http)
    try:
        second = RssCollector.from_settings(settings.sources[0], fetcher, store).collect(utcnow())
    finally:
        fetcher.close()
        store.close()
    result = tally(slack_server, [HEALTHY.key, RELEVANT[0].key, RELEVANT[1].key])
    scorecard.record(
        "source: feed of 10,000 items", "the 500 newest per poll, the rest in later polls; others flow",
        f"first poll {first}, next poll {len(second.items)} more (none repeated), logged: {bool(lines)}, "
        f"{result.describe()}",
        lost=result.lost, doubled=result.doubled + len({i.id for i in second.items} & _seen_ids(settings, name)),
    )
    assert first == 500 and lines and run.counts(f"source:{name}").get("errors", 0) >= 1
    assert len(second.items) == 500 and not second.not_modified
    assert result.counts == {k: 1 for k in result.counts} and result.noise == 0, result


def _huge_feed(fillers: int, newest: list[Entry]) -> bytes:
    """The ``newest`` entries and ``fillers`` older one-line items (title, link, date: lean, to parse quickly)."""
    lean = "".join(
        f"<item><title>대구 {n}번 시내버스 노선 조정</title><link>https://bus.example.kr/notice/{n}</link>"
        f"<pubDate>{format_datetime(BASE - timedelta(minutes=n))}</pubDate></item>"
        for n in range(fillers)
    )
    return rss(newest).replace("</channel>", lean + "</channel>").encode()


def _seen_ids(settings: Settings, source: str) -> set[str]:
    with sqlite3.connect(Path(settings.state_dir) / "state.db") as conn:
        return {row[0] for row in conn.execute("SELECT item_id FROM seen WHERE source=?", (source,))}
