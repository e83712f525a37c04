"""RSS/Atom collection end to end against the real local server and a real Store."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest

from collectors.fetch import Fetcher
from collectors.rss import RssCollector, _needs_document_url
from collectors.urls import canonical_url, item_id
from newsradar.errors import ContentError
from newsradar.settings import SourceSettings
from newsradar.store import Store
from tests.collectors.conftest import SEOUL, fixture_bytes
from tests.servers.http import HttpServer, repeat_bytes

XML = {"Content-Type": "application/rss+xml; charset=utf-8"}


def collector(
    http_server: HttpServer, fetcher: Fetcher, store: Store, path: str = "/feed.xml", **source: object
) -> RssCollector:
    settings = SourceSettings(name=str(source.pop("name", "donghae")), url=http_server.url(path), **source)
    return RssCollector.from_settings(settings, fetcher, store)


def test_first_poll_emits_items_and_second_poll_gets_304(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    http_server.add(
        "/feed.xml",
        fixture_bytes("feed_utf8.xml"),
        headers=XML,
        etag='"feed-v1"',
        last_modified="Tue, 03 Dec 2024 05:00:00 GMT",
    )
    rss = collector(http_server, fetcher, store)
    batch = rss.collect(now)
    assert [i.title for i in batch.items] == [
        "경북도, 배터리 규제자유특구 실증 4년 성과 공개",
        "포항시, 이차전지 특화단지 2단계 기반시설 착공",
        "CIBF 2025 폐막… K-배터리 <소재> 기업 수출 상담 1억달러",
    ]  # oldest first; entities unescaped
    assert batch.received == 3 and not batch.errors
    assert store.validators("donghae", rss.source.url) == (None, None)  # nothing saved before finalize
    batch.finalize(store, now)
    assert store.validators("donghae", rss.source.url) == ('"feed-v1"', "Tue, 03 Dec 2024 05:00:00 GMT")

    again = rss.collect(now)
    assert again.not_modified and again.items == []
    assert http_server.requests[-1].headers["if-none-match"] == '"feed-v1"'


def test_a_304_poll_writes_nothing_to_the_state_store(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    """An unchanged feed costs no write: its validators and seen ids stay as they are (polling at scale)."""
    http_server.add("/feed.xml", fixture_bytes("feed_utf8.xml"), headers=XML, etag='"feed-v1"')
    rss = collector(http_server, fetcher, store)
    rss.collect(now).finalize(store, now)
    # PRAGMA data_version, read on a connection of its own, changes whenever another connection commits
    watcher = sqlite3.connect(str(store.path))
    try:
        before = watcher.execute("PRAGMA data_version").fetchone()[0]
        again = rss.collect(now)
        again.finalize(store, now)
        assert again.not_modified and again.validators == {} and again.items == []
        assert watcher.execute("PRAGMA data_version").fetchone()[0] == before
        rss.collect(now).finalize(store, now + timedelta(minutes=1))
        assert watcher.execute("PRAGMA data_version").fetchone()[0] == before
    finally:
        watcher.close()
def test_items_carry_canonical_urls_ids_outlet_and_body(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    http_server.add("/feed.xml", fixture_bytes("feed_utf8.xml"), headers=XML)
    items = {i.title[:3]: i for i in collector(http_server, fetcher, store).collect(now).items}
    pohang, cibf, gyeongbuk = items["포항시"], items["CIB"], items["경북도"]
    assert pohang.canonical_url == "https://www.donghae-econ.example/news/articleView.html?idxno=1234"
    assert "utm_source" in pohang.url  # the link as published is kept for people; the canonical one for us
    assert pohang.guid == "donghae-1234" and pohang.id == item_id("donghae-1234", pohang.canonical_url)
    assert cibf.canonical_url == "https://www.donghae-econ.example/news/articleView.html?idxno=1235"
    assert cibf.id == item_id(None, cibf.canonical_url)  # URL guid == its canonical link
    # A relative link resolves against the feed's own URL (the document base), as feed readers do.
    assert gyeongbuk.url == http_server.url("/news/articleView.html?idxno=1236")
    assert gyeongbuk.guid is None and gyeongbuk.id == item_id(None, gyeongbuk.canonical_url)
    assert "<b>2단계</b>" in pohang.body and pohang.html is None
    assert {i.outlet for i in items.values()} == {"동해경제신문 - 경제"}  # the feed title
    assert all(i.fetched_at == now and i.source == "donghae" for i in items.values())


def test_publication_times_and_zones(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    http_server.add("/feed.xml", fixture_bytes("feed_utf8.xml"), headers=XML)
    items = {i.title[:3]: i for i in collector(http_server, fetcher, store).collect(now).items}
    assert items["포항시"].published_at == datetime(2024, 12, 3, 13, 57, tzinfo=SEOUL)
    assert items["CIB"].published_at == datetime(2025, 5, 18, 9, 30, tzinfo=UTC)
    naive = items["경북도"].published_at  # RFC 822 date without a zone: the source's zone (Asia/Seoul)
    assert naive is not None and naive.utcoffset() == timedelta(hours=9) and naive.hour == 10


def test_atom_naive_times_take_the_source_timezone(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    http_server.add(
        "/atom", fixture_bytes("feed_atom_naive.xml"), headers={"Content-Type": "application/atom+xml"}
    )
    items = collector(http_server, fetcher, store, "/atom", name="insight").collect(now).items
    by_title = {i.title: i for i in items}
    ess = by_title["나트륨이온 배터리, ESS 시장 공략 본격화"]  # HTML title: tags stripped
    assert ess.published_at == datetime(2025, 5, 16, 14, 10, 20, tzinfo=SEOUL)
    assert ess.canonical_url == "https://battery-insight.example/p/3201"  # ref= removed
    steel = by_title["포항 철강기업, 이차전지 소재 전환 속도"]
    assert steel.published_at == datetime(2025, 5, 16, 14, 10, 20, tzinfo=SEOUL)  # 05:10:20Z
    assert "2천억원" in steel.body  # Atom content preferred over a shorter summary
    assert steel.guid == "tag:battery-insight.example,2025:post-3202"

    other_zone = collector(http_server, fetcher, store, "/atom", name="utc-src", timezone="UTC").collect(now)
    ess_utc = next(i for i in other_zone.items if "ESS" in i.title)
    assert ess_utc.published_at == datetime(2025, 5, 16, 14, 10, 20, tzinfo=UTC)


def test_missing_and_future_dates(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    feed = f"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>
    <item><title>날짜 없는 기사</title><link>https://a.example/1</link></item>
    <item><title>미래 기사</title><link>https://a.example/2</link><pubDate>{
        (now + timedelta(days=30)).strftime("%a, %d %b %Y %H:%M:%S +0900")
    }</pubDate></item>
    <item><title>조금 이른 기사</title><link>https://a.example/3</link><pubDate>{
        (now + timedelta(hours=3)).strftime("%a, %d %b %Y %H:%M:%S +0900")
    }</pubDate></item></channel></rss>"""
    http_server.add("/f", feed.encode(), headers=XML)
    with caplog.at_level(logging.WARNING, logger="collectors.rss"):
        items = {i.title: i for i in collector(http_server, fetcher, store, "/f").collect(now).items}
    assert items["날짜 없는 기사"].published_at is None
    assert items["미래 기사"].published_at == now
    assert items["조금 이른 기사"].published_at == now + timedelta(hours=3)  # within a day: clocks differ
    assert any("in the future" in r.getMessage() and "a.example/2" in r.getMessage() for r in caplog.records)


def test_euc_kr_feed_with_cp949_only_bytes(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    title = "똠방각하 햏자, 포항 이차전지 특화단지 방문"
    feed = f"""<?xml version="1.0" encoding="euc-kr"?><rss version="2.0"><channel><title>지역소식</title>
    <item><title>{title}</title><link>http://local.example/1</link>
    <description>똠양꿍 축제와 함께 열린 설명회</description></item></channel></rss>""".encode("cp949")
    http_server.add("/euckr", feed, headers={"Content-Type": "text/xml; charset=euc-kr"})
    batch = collector(http_server, fetcher, store, "/euckr").collect(now)
    assert [i.title for i in batch.items] == [title]
    assert batch.items[0].body == "똠양꿍 축제와 함께 열린 설명회" and batch.items[0].outlet == "지역소식"


def test_wrong_charset_and_invalid_bytes_are_replaced_counted_and_survive(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    good = "포항 이차전지 소식".encode()
    feed = (
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title><item><title>'
        + good
        + b"\xff\xfe"
        + b"</title><link>https://a.example/1</link></item></channel></rss>"
    )
    http_server.add("/bad", feed, headers={"Content-Type": "text/xml; charset=utf-8"})
    with caplog.at_level(logging.WARNING, logger="collectors.charset"):
        batch = collector(http_server, fetcher, store, "/bad").collect(now)
    assert batch.items[0].title.startswith("포항 이차전지 소식") and batch.items[0].title.count("\ufffd") == 2
    assert any("2 undecodable" in r.getMessage() and "/bad" in r.getMessage() for r in caplog.records)


def test_broken_xml_keeps_the_entries_that_parsed(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    http_server.add("/broken", fixture_bytes("feed_broken.xml"), headers=XML)
    with caplog.at_level(logging.WARNING):
        batch = collector(http_server, fetcher, store, "/broken").collect(now)
    titles = [i.title for i in batch.items]
    assert "특화단지 전력망 먼저…포항·울산 기업들 한목소리" in titles
    assert batch.errors and "not well-formed" in batch.errors[0]
    assert any("not well-formed" in r.getMessage() and "donghae" in r.getMessage() for r in caplog.records)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<rss version="2.0"><channel><title>&lol3;</title>
<item><title>&lol3;</title><link>https://a.example/1</link></item></channel></rss>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE rss [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<rss version="2.0"><channel><title>&xxe;</title>
<item><title>&xxe;</title><link>https://a.example/1</link></item></channel></rss>"""


@pytest.mark.parametrize(
    "body",
    [BILLION_LAUGHS, EXTERNAL_ENTITY, BILLION_LAUGHS.decode().encode("utf-16")],
    ids=["billion-laughs", "external-entity", "utf16-billion-laughs"],
)
def test_entity_declarations_are_refused(
    http_server: HttpServer,
    fetcher: Fetcher,
    store: Store,
    now: datetime,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
) -> None:
    http_server.add("/evil", body, headers={"Content-Type": "application/xml"})
    with caplog.at_level(logging.ERROR, logger="collectors.rss"), pytest.raises(ContentError, match="ENTITY"):
        collector(http_server, fetcher, store, "/evil").collect(now)
    assert any("refused" in r.getMessage() and "/evil" in r.getMessage() for r in caplog.records)


def test_plain_doctype_without_entities_is_fine(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    feed = b"""<?xml version="1.0"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"
 "http://my.netscape.com/publish/formats/rss-0.91.dtd">
<rss version="0.91"><channel><title>t</title><item><title>ok</title><link>https://a.example/1</link></item>
</channel></rss>"""
    http_server.add("/old", feed, headers={"Content-Type": "text/xml"})
    assert [i.title for i in collector(http_server, fetcher, store, "/old").collect(now).items] == ["ok"]


def test_oversized_feed_is_refused_and_logged(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    http_server.add("/huge", repeat_bytes(100_000_000), headers=XML)
    with caplog.at_level(logging.WARNING, logger="collectors.rss"), pytest.raises(ContentError, match="cap"):
        collector(http_server, fetcher, store, "/huge").collect(now)
    assert any("donghae" in r.getMessage() and "/huge" in r.getMessage() for r in caplog.records)


def test_an_html_page_is_not_a_feed(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    http_server.add("/notfeed", "<html><body><p>점검 중입니다</p></body></html>".encode())
    with pytest.raises(ContentError, match="not an RSS/Atom feed"):
        collector(http_server, fetcher, store, "/notfeed").collect(now)


def test_seen_items_are_not_re_emitted_after_finalize_but_are_after_a_crash(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    http_server.add("/feed.xml", fixture_bytes("feed_utf8.xml"), headers=XML)  # no validators: always 200
    rss = collector(http_server, fetcher, store)
    first = rss.collect(now)
    assert len(first.items) == 3
    # Crash before the items were published: finalize never ran, so nothing is lost.
    crashed_retry = rss.collect(now)
    assert [i.id for i in crashed_retry.items] == [i.id for i in first.items]
    crashed_retry.finalize(store, now)
    after = rss.collect(now)
    assert after.items == [] and after.skipped_seen == 3 and after.received == 3


def test_new_entry_in_a_changed_feed_is_the_only_item(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    original = fixture_bytes("feed_utf8.xml")
    http_server.add("/feed.xml", original, headers=XML, etag='"v1"')
    rss = collector(http_server, fetcher, store)
    rss.collect(now).finalize(store, now)
    extra = (
        "<item><title>포항 영일만항 물동량 최대</title><link>https://www.donghae-econ.example/news/"
        "articleView.html?idxno=1300</link></item></channel>"
    ).encode()
    http_server.add("/feed.xml", original.replace(b"</channel>", extra), headers=XML, etag='"v2"')
    batch = rss.collect(now)
    assert [i.title for i in batch.items] == ["포항 영일만항 물동량 최대"] and batch.skipped_seen == 3


def test_duplicate_ids_within_one_feed_are_dropped(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    feed = """<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>
    <item><title>첫 번째</title><link>https://a.example/n?id=1&amp;utm_source=x</link></item>
    <item><title>같은 기사 다른 추적값</title><link>https://a.example/n?id=1&amp;utm_source=y</link></item>
    <item><title>링크 없는 항목</title></item>
    </channel></rss>""".encode()
    http_server.add("/dup", feed, headers=XML)
    batch = collector(http_server, fetcher, store, "/dup").collect(now)
    assert [i.title for i in batch.items] == ["첫 번째"]
    assert batch.dropped == {"duplicate": 1, "no_link": 1} and batch.received == 3
    assert any("no link" in e for e in batch.errors)


def test_item_cap_keeps_the_newest(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    entries = "".join(
        f"<item><title>기사 {n}</title><link>https://a.example/{n}</link>"
        f"<pubDate>{(now - timedelta(hours=n)).strftime('%a, %d %b %Y %H:%M:%S +0900')}</pubDate></item>"
        for n in range(12)
    )
    http_server.add(
        "/many",
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{entries}'
        f"</channel></rss>".encode(),
        headers=XML,
    )
    source = SourceSettings(name="many", url=http_server.url("/many"))
    batch = RssCollector(source, fetcher, store, max_items=5).collect(now)
    assert sorted(i.title for i in batch.items) == sorted(f"기사 {n}" for n in range(5))
    assert batch.dropped == {"over_cap": 7}


def test_outlet_from_entry_source_and_google_news_titles(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    feed = """<?xml version="1.0" encoding="UTF-8"?><rss version="2.0">
    <channel><title>"이차전지" - Google 뉴스</title>
    <item><title>포항 이차전지 특화단지 투자 확대 - 경북일보</title><link>https://news.google.com/rss/articles/CBMiA1</link>
      <source url="https://www.kyongbuk.co.kr">경북일보</source></item>
    <item><title>CIBF 개막, 한국 기업 대거 참가 - 전자신문</title><link>https://news.google.com/rss/articles/CBMiB2</link>
    </item></channel></rss>""".encode()
    # Served from 127.0.0.1, not a news.google.* host: the " - outlet" rule applies only where <source> agrees.
    http_server.add("/gnews", feed, headers=XML)
    source = SourceSettings(name="gnews", url=http_server.url("/gnews"))
    batch = RssCollector(source, fetcher, store).collect(now)
    by_title = {i.title: i.outlet for i in batch.items}
    assert by_title["포항 이차전지 특화단지 투자 확대"] == "경북일보"  # <source>, and the suffix cut from the headline
    assert (
        by_title["CIBF 개막, 한국 기업 대거 참가 - 전자신문"] == '"이차전지" - Google 뉴스'
    )  # not an aggregator host

    configured = SourceSettings(name="gnews2", url=http_server.url("/gnews"), outlet="구글뉴스 모음")
    assert {i.outlet for i in RssCollector(configured, fetcher, store).collect(now).items} == {
        "구글뉴스 모음"
    }


def test_google_news_style_outlet_on_an_aggregator_host() -> None:
    from collectors.rss import _outlet

    source = SourceSettings(name="g", url="https://news.google.com/rss/search?q=x")
    assert _outlet(source, {}, "CIBF 개막, 한국 기업 대거 참가 - 전자신문", "Google 뉴스", True) == "전자신문"
    assert _outlet(source, {}, "제목만 있는 기사", "Google 뉴스", True) == "Google 뉴스"


def test_fetch_articles_attaches_pages_and_survives_a_failing_one(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    feed = f"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>
    <item><title>본문 있는 기사</title><link>{http_server.url("/a/1")}</link><description>요약</description></item>
    <item><title>사라진 기사</title><link>{http_server.url("/a/2")}</link><description>요약만</description></item>
    </channel></rss>""".encode()
    http_server.add("/f", feed, headers=XML)
    page = "<html><head><meta charset='euc-kr'></head><body><p>포항 이차전지 본문</p></body></html>".encode(
        "cp949"
    )
    http_server.add("/a/1", page, headers={"Content-Type": "text/html"})
    batch = collector(http_server, fetcher, store, "/f", fetch_articles=True).collect(now)
    items = {i.title: i for i in batch.items}
    assert items["본문 있는 기사"].html is not None and "포항 이차전지 본문" in items["본문 있는 기사"].html
    assert items["사라진 기사"].html is None and items["사라진 기사"].body == "요약만"
    assert len(batch.errors) == 1 and "/a/2" in batch.errors[0]


def test_a_remote_feed_cannot_make_us_read_local_files(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.html"
    secret.write_text("<html><body><p>이 기계의 비밀 포항</p></body></html>", encoding="utf-8")
    feed = f"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>
    <item><title>로컬 파일을 가리키는 기사</title><link>{secret.as_uri()}</link><description>요약</description></item>
    </channel></rss>""".encode()
    http_server.add("/f", feed, headers=XML)
    batch = collector(http_server, fetcher, store, "/f", fetch_articles=True).collect(now)
    [item] = batch.items
    assert item.html is None and item.body == "요약"  # the feed's summary is kept, the file is never read
    assert len(batch.errors) == 1 and "local file link" in batch.errors[0]


def test_canonical_url_in_items_matches_urls_module(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    http_server.add("/feed.xml", fixture_bytes("feed_utf8.xml"), headers=XML)
    for item in collector(http_server, fetcher, store).collect(now).items:
        assert item.canonical_url == canonical_url(item.url)


def _gnews_feed(query: str, entries: list[tuple[str, str, str]]) -> bytes:
    """A feed shaped like Google News search RSS: guid = the article token, link on news.google.com, <source>."""
    items = "".join(
        f'<item><title>{title} - {outlet}</title><link>https://news.google.com/rss/articles/{token}?oc=5</link>'
        f'<guid isPermaLink="false">{token}</guid><pubDate>Wed, 18 Nov 2026 06:20:00 GMT</pubDate>'
        f'<description>&lt;a href="https://news.google.com/rss/articles/{token}?oc=5"&gt;{title}&lt;/a&gt;'
        f'&amp;nbsp;&amp;nbsp;&lt;font color="#6f6f6f"&gt;{outlet}&lt;/font&gt;</description>'
        f'<source url="https://www.example-{outlet}.kr">{outlet}</source></item>'
        for token, title, outlet in entries
    )
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>"{query}" - Google 뉴스'
            f"</title>{items}</channel></rss>").encode()


def test_google_news_search_feeds_headline_outlet_and_one_item_across_queries(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    shared = ("CBMiSGh0dHBzOi8vd3d3Lmt5b25nYnVrLmNvLmtyL25ld3MvYXJ0aWNsZVZpZXcuaHRtbD9pZHhubz0xMjM", "포항 이차전지 "
              "특화단지 - 2차 투자 확대", "경북일보")  # a headline that itself holds " - "
    http_server.add("/q1", _gnews_feed("이차전지", [shared, ("CBMiA2", "이차전지 수출 증가", "전자신문")]), headers=XML)
    http_server.add("/q2", _gnews_feed("포항", [shared]), headers=XML)
    first = RssCollector(SourceSettings(name="gnews-이차전지", url=http_server.url("/q1")), fetcher, store).collect(now)
    second = RssCollector(SourceSettings(name="gnews-포항", url=http_server.url("/q2")), fetcher, store).collect(now)
    items = {i.title: i for i in first.items}
    assert set(items) == {"포항 이차전지 특화단지 - 2차 투자 확대", "이차전지 수출 증가"}  # only the outlet suffix cut
    assert items["이차전지 수출 증가"].outlet == "전자신문"
    assert items["포항 이차전지 특화단지 - 2차 투자 확대"].outlet == "경북일보"
    # Google's link is kept as it is (no scraping of the redirect), and both query feeds give one item id
    assert items["이차전지 수출 증가"].url == "https://news.google.com/rss/articles/CBMiA2?oc=5"
    assert [i.id for i in second.items] == [items["포항 이차전지 특화단지 - 2차 투자 확대"].id]


def test_default_config_has_one_korean_google_news_feed_per_watched_term() -> None:
    from urllib.parse import parse_qs, urlsplit

    from newsradar.settings import load

    settings = load(Path(__file__).resolve().parents[2] / "config" / "default.yaml")
    feeds = [s for s in settings.sources if "news.google.com/rss/search" in s.url]
    queries = []
    for feed in feeds:
        params = parse_qs(urlsplit(feed.url).query)
        assert (params["hl"], params["gl"], params["ceid"]) == (["ko"], ["KR"], ["KR:ko"]), feed.name
        queries.append(params["q"][0])
    for term in settings.watchlist.terms:
        assert any(term.name in q for q in queries), f"no Google News feed for {term.name}"


def _feed(items: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>'
            f"<link>https://press.example/</link>{items}</channel></rss>").encode()


@pytest.mark.parametrize("entry, url, guid", [
    # a relative link: the feed's own URL is its base
    ("<link>/news/7</link>", "/news/7", None),
    # a permalink guid that is not a URL: feedparser resolves it against the feed's URL, and its id stays that
    ("<link>https://press.example/a/8</link><guid>8</guid>", "https://press.example/a/8", "/8"),
    ("<link>https://press.example/a/9</link><guid isPermaLink=\"false\">9</guid>", "https://press.example/a/9", "9"),
    ('<link><![CDATA[news/10]]></link>', "/news/10", None),
], ids=["relative-link", "relative-permalink-guid", "opaque-guid", "cdata-relative-link"])
def test_relative_references_resolve_against_the_feed_url(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime, entry: str, url: str, guid: str | None
) -> None:
    """Feeds with a relative reference are parsed with the document's URL (collectors/rss.py _needs_document_url);
    feeds with none are parsed without it, and the items are the same either way."""
    absolute = "<item><title>absolute</title><link>https://press.example/a/1</link></item>"
    http_server.add("/feed.xml", _feed(f"<item><title>x</title>{entry}</item>{absolute}"), headers=XML)
    items = {i.title: i for i in collector(http_server, fetcher, store).collect(now).items}
    expected_url = url if url.startswith("https:") else http_server.url(url)
    assert items["x"].url == expected_url
    expected_guid = http_server.url(guid) if guid and guid.startswith("/") else guid
    assert items["x"].guid == expected_guid
    assert items["x"].id == item_id(expected_guid, canonical_url(expected_url))
    assert items["absolute"].url == "https://press.example/a/1"


def test_a_feed_with_absolute_references_only_gives_the_items_it_gave_with_the_document_url(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    body = fixture_bytes("feed_atom_naive.xml")
    assert not _needs_document_url(body.decode("utf-8"))
    http_server.add("/atom", body, headers={"Content-Type": "application/atom+xml"})
    fast = collector(http_server, fetcher, store, "/atom", name="insight").collect(now).items
    # the reference: feedparser told the document's URL, as every feed was parsed before
    reference = feedparser.parse(body, response_headers={"content-location": http_server.url("/atom")},
                                 resolve_relative_uris=False)  # fmt: skip
    assert [i.url for i in fast] == [e.link for e in reference.entries]
    assert [i.guid for i in fast] == [e.id for e in reference.entries]


def test_feeds_polled_side_by_side_are_parsed_one_at_a_time(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sweep threads fetch side by side but parse in turn (feedparser holds the GIL: side by side is no faster, and
    every feed would come out at the end together); each feed's items are all there either way."""
    inside, most = 0, 0
    guard = threading.Lock()
    parse = feedparser.parse

    def watched(*args: object, **kwargs: object) -> object:
        nonlocal inside, most
        with guard:
            inside += 1
            most = max(most, inside)
        time.sleep(0.05)  # wide enough for another thread's parse to start meanwhile, were it allowed
        try:
            return parse(*args, **kwargs)
        finally:
            with guard:
                inside -= 1

    monkeypatch.setattr(feedparser, "parse", watched)
    polls = []
    for k in range(4):
        http_server.add(f"/feed{k}.xml", fixture_bytes("feed_utf8.xml"), headers=XML)
        polls.append(collector(http_server, fetcher, store, f"/feed{k}.xml", name=f"feed{k}"))
    with ThreadPoolExecutor(max_workers=4) as pool:
        batches = list(pool.map(lambda rss: rss.collect(now), polls))
    assert most == 1
    assert [len(b.items) for b in batches] == [3, 3, 3, 3]
