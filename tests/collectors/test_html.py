"""HTML sources: list page → new article links → article pages, against the real local server."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest

from collectors.fetch import Fetcher
from collectors.html import HtmlCollector, article_links, plain_text
from collectors.urls import canonical_url
from newsradar.errors import PermanentError
from newsradar.settings import SourceSettings
from newsradar.store import Store
from tests.collectors.conftest import fixture_bytes
from tests.servers.http import HttpServer

ARTICLES = {
    "2001": "포항시, 이차전지 특화단지 2단계 기반시설 착공",
    "2002": "CIBF 2025 폐막…K-배터리 수출 상담 1억달러",
    "2003": "경북도, 배터리 규제자유특구 성과 공개",
}
SELECTOR = "section.article-list h4.titles a"


def serve_site(http_server: HttpServer, *, etag: str | None = '"list-v1"') -> None:
    """The list page and one page per article (routes keyed by path and ?idxno= query)."""
    http_server.add("/news/list", fixture_bytes("list_page.html"), etag=etag)
    template = fixture_bytes("article_page.html").decode()
    for idxno, title in ARTICLES.items():
        page = template.replace("{title}", title).encode()
        # The first link carries a tracking parameter: the page is fetched as linked, the id is canonical.
        query = f"idxno={idxno}&utm_source=list" if idxno == "2001" else f"idxno={idxno}"
        http_server.add(f"/news/articleView.html?{query}", page)


def html_source(http_server: HttpServer, **extra: object) -> SourceSettings:
    values: dict[str, object] = {
        "name": "donghae-html",
        "kind": "html",
        "url": http_server.url("/news/list"),
        "link_selector": SELECTOR,
    }
    values.update(extra)
    return SourceSettings(**values)  # type: ignore[arg-type]


def test_list_page_and_three_articles_then_nothing_new(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    serve_site(http_server)
    html = HtmlCollector.from_settings(html_source(http_server), fetcher, store)
    batch = html.collect(now)
    assert [i.title for i in batch.items] == list(ARTICLES.values())  # link text, page order, repeat dropped
    assert [i.canonical_url for i in batch.items] == [
        http_server.url(f"/news/articleView.html?idxno={n}") for n in ARTICLES
    ]  # relative links resolved, utm_source removed
    assert all(i.html and f"<p>{i.title}. 포항시는" in i.html for i in batch.items)  # each its own page
    assert {i.outlet for i in batch.items} == {"동해경제신문"}  # og:site_name of the list page
    assert http_server.hits("/news/articleView.html") == 3 and batch.received == 3
    batch.finalize(store, now)

    second = html.collect(now)  # the list page answers 304: no article page is fetched
    assert second.not_modified and second.items == []
    assert http_server.hits("/news/articleView.html") == 3

    http_server.add("/news/list", fixture_bytes("list_page.html"), etag='"list-v2"')  # changed, same links
    third = html.collect(now)
    assert third.items == [] and third.skipped_seen == 3
    assert http_server.hits("/news/articleView.html") == 3


def test_unfinalized_poll_is_repeated_after_a_crash(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    serve_site(http_server)
    html = HtmlCollector.from_settings(html_source(http_server), fetcher, store)
    first = html.collect(now)
    again = html.collect(now)  # no finalize: the list validators were not saved, nothing marked seen
    assert not again.not_modified and [i.id for i in again.items] == [i.id for i in first.items]


def test_max_articles_limits_the_links_taken(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    serve_site(http_server)
    batch = HtmlCollector(html_source(http_server, max_articles=2), fetcher, store).collect(now)
    assert [i.title for i in batch.items] == list(ARTICLES.values())[:2]


def test_robots_txt_disallowing_articles_is_honoured(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    serve_site(http_server)
    http_server.robots("User-agent: *\nDisallow: /news/articleView.html\n")
    with caplog.at_level(logging.WARNING):
        batch = HtmlCollector(html_source(http_server), fetcher, store).collect(now)
    assert batch.items == [] and http_server.hits("/news/articleView.html") == 0
    assert batch.dropped == {"article_failed": 3} and all("disallows" in e for e in batch.errors)
    assert any("robots.txt" in r.getMessage() for r in caplog.records)
    batch.finalize(store, now)  # disallowed for good: remembered, so not retried every poll
    serve_site(http_server, etag='"list-v2"')  # the list page changes; its links are the same
    again = HtmlCollector(html_source(http_server), fetcher, store).collect(now)
    assert again.skipped_seen == 3 and again.errors == []


def test_robots_txt_disallowing_the_list_page_stops_the_poll(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    serve_site(http_server)
    http_server.robots("User-agent: *\nDisallow: /\n")
    with pytest.raises(PermanentError, match="disallows"):
        HtmlCollector(html_source(http_server), fetcher, store).collect(now)
    assert http_server.hits("/news/list") == 0


def test_one_failing_article_does_not_stop_the_others(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    page = fixture_bytes("article_page.html").decode().replace("{title}", "정상 기사").encode()
    links = "".join(f'<h4 class="titles"><a href="/a/{n}">기사 {n}</a></h4>' for n in (1, 2, 3))
    http_server.add("/news/list", f'<section class="article-list">{links}</section>'.encode(), etag='"v1"')
    http_server.add("/a/1", page)
    http_server.add("/a/2", b"gone", status=404)
    http_server.add("/a/3", page)
    html = HtmlCollector(html_source(http_server), fetcher, store)
    batch = html.collect(now)
    assert [i.title for i in batch.items] == ["기사 1", "기사 3"]
    assert batch.dropped == {"article_failed": 1} and "/a/2" in batch.errors[0]
    assert batch.validators  # a permanent failure does not hold the list page back


def test_transient_article_failure_is_retried_next_poll(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    page = fixture_bytes("article_page.html").decode().replace("{title}", "기사").encode()
    links = "".join(f'<h4 class="titles"><a href="/a/{n}">기사 {n}</a></h4>' for n in (1, 2))
    http_server.add("/news/list", f'<section class="article-list">{links}</section>'.encode(), etag='"v1"')
    http_server.add("/a/1", page)
    http_server.add("/a/2", b"busy", status=503, headers={"Retry-After": "5"})
    html = HtmlCollector(html_source(http_server), fetcher, store)
    first = html.collect(now)
    assert [i.title for i in first.items] == ["기사 1"] and first.dropped == {"article_transient": 1}
    assert first.validators == {}  # the unchanged list page must not answer 304 next time
    first.finalize(store, now)
    http_server.add("/a/2", page)
    second = html.collect(now)
    assert not second.not_modified and [i.title for i in second.items] == ["기사 2"]


def test_links_to_other_hosts_are_skipped_unless_allowed(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    page = fixture_bytes("article_page.html").decode().replace("{title}", "기사").encode()
    other = http_server.url("/a/2", host="localhost")
    links = (
        '<h4 class="titles"><a href="/a/1">우리 기사</a></h4>'
        f'<h4 class="titles"><a href="{other}">남의 기사</a></h4>'
    )
    http_server.add("/news/list", f'<section class="article-list">{links}</section>'.encode())
    http_server.add("/a/1", page)
    http_server.add("/a/2", page)
    batch = HtmlCollector(html_source(http_server), fetcher, store).collect(now)
    assert [i.title for i in batch.items] == ["우리 기사"] and batch.dropped == {"other_host": 1}
    allowed = HtmlCollector(
        html_source(http_server, name="allowing", allowed_hosts=["localhost"]), fetcher, store
    )
    assert [i.title for i in allowed.collect(now).items] == ["우리 기사", "남의 기사"]


def test_selector_matching_nothing_is_reported(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    http_server.add("/news/list", "<html><body><p>개편 중</p></body></html>".encode())
    batch = HtmlCollector(html_source(http_server), fetcher, store).collect(now)
    assert batch.items == [] and "matched no links" in batch.errors[0]


def test_euc_kr_list_and_article_pages(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    listing = (
        '<meta charset="euc-kr"><section class="article-list">'
        '<h4 class="titles"><a href="/a/1">똠방각하 포항 방문</a></h4></section>'
    )
    http_server.add("/news/list", listing.encode("cp949"), headers={"Content-Type": "text/html"})
    http_server.add(
        "/a/1",
        "<html><body><p>햏자 이차전지 특화단지</p></body></html>".encode("cp949"),
        headers={"Content-Type": "text/html; charset=euc-kr"},
    )
    batch = HtmlCollector(html_source(http_server), fetcher, store).collect(now)
    assert batch.items[0].title == "똠방각하 포항 방문" and "햏자 이차전지 특화단지" in (
        batch.items[0].html or ""
    )


def test_article_links_resolves_base_href_and_skips_scripts() -> None:
    page = """<base href="https://news.example.kr/sub/"><div class="l"><a href="a?id=1">하나</a></div>
    <div class="l"><a href="javascript:void(0)">둘</a></div><div class="l"><a href="#top">셋</a></div>
    <div class="l"><span>링크 없음</span></div>
    <div class="l"><a href="/b?id=2&amp;utm_source=x"> 넷 <b>강조</b></a></div>"""
    assert article_links(page, "https://ignored.example/", "div.l") == [
        ("https://news.example.kr/sub/a?id=1", "하나"),
        ("https://news.example.kr/b?id=2&utm_source=x", "넷 강조"),
    ]
    assert canonical_url("https://news.example.kr/b?id=2&utm_source=x") == "https://news.example.kr/b?id=2"


def test_plain_text_strips_tags_and_entities() -> None:
    assert plain_text("<b>이차전지</b> &quot;특화단지&quot; &amp; 포항") == '이차전지 "특화단지" & 포항'
    assert plain_text("CIBF&#8230;") == "CIBF…"
    assert plain_text(None) == ""
