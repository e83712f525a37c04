"""Naver News search sources against a local stand-in of the API (tests/servers/naver.py), over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest

from collectors.fetch import Fetcher
from collectors.naver import NaverCollector, budget_report, naver_day, scheduled_interval, seconds_to_reset
from collectors.outlets import outlet_for_url
from collectors.rss import RssCollector
from newsradar.errors import PermanentError, TransientError
from newsradar.events import decode, encode
from newsradar.settings import NaverSettings, Settings, SourceSettings, parse
from newsradar.store import SqliteStore
from tests.collectors.conftest import SEOUL
from tests.servers.naver import NaverApi

NOW = datetime(2026, 11, 18, 16, 0, tzinfo=SEOUL)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[NaverApi]:
    monkeypatch.setenv("NAVER_CLIENT_ID", "test-client-id")
    monkeypatch.setenv("NAVER_CLIENT_SECRET", "test-client-secret")
    with NaverApi() as server:
        yield server


def _source(api: NaverApi, **extra: object) -> SourceSettings:
    return SourceSettings(name="naver-포항", kind="naver", url=api.url, query="포항 이차전지", **extra)  # type: ignore[arg-type]


def _add(api: NaverApi, n: int, minutes_ago: int, host: str = "www.yna.co.kr", naver_copy: bool = True) -> None:
    api.add(
        title=f"포항 이차전지 특화단지 \"{n}번째\" 소식 & 전망",
        originallink=f"https://{host}/view/AKR{n}?utm_source=naver",
        link=f"https://n.news.naver.com/mnews/article/001/{n:010d}" if naver_copy else f"https://{host}/view/AKR{n}",
        description=f"경북 포항의 이차전지 <기업> {n}곳이 투자를 늘린다.",
        received=NOW - timedelta(minutes=minutes_ago),
    )


def _collector(api: NaverApi, fetcher: Fetcher, store: SqliteStore, budget: int = 100, **extra: object) -> NaverCollector:
    return NaverCollector(_source(api, **extra), fetcher, store, NaverSettings(daily_budget=budget))


def test_a_poll_sends_credentials_sort_by_date_and_strips_highlighting(api: NaverApi, fetcher: Fetcher,
                                                                       store: SqliteStore):  # fmt: skip
    _add(api, 1, 30)
    _add(api, 2, 10, host="news.kbs.co.kr")
    batch = _collector(api, fetcher, store).collect(NOW)
    path, headers = api.requests[0]
    assert headers["x-naver-client-id"] == "test-client-id" and headers["x-naver-client-secret"] == "test-client-secret"
    assert api.searches()[0] == {"query": "포항 이차전지", "display": "100", "start": "1", "sort": "date"}
    assert [i.title for i in batch.items] == ['포항 이차전지 특화단지 "1번째" 소식 & 전망',
                                              '포항 이차전지 특화단지 "2번째" 소식 & 전망']  # oldest first
    first = batch.items[0]
    assert first.body == "경북 포항의 이차전지 <기업> 1곳이 투자를 늘린다."
    assert first.url == "https://www.yna.co.kr/view/AKR1?utm_source=naver"
    assert first.canonical_url == "https://www.yna.co.kr/view/AKR1"  # originallink, tracking dropped
    assert first.guid == "https://n.news.naver.com/mnews/article/001/0000000001"  # Naver's copy kept
    assert [i.outlet for i in batch.items] == ["연합뉴스", "KBS"]
    assert first.published_at == NOW - timedelta(minutes=30)  # pubDate: Naver's receive time, kept


def test_half_an_emoji_escaped_in_the_json_is_replaced_and_the_item_travels(api: NaverApi, fetcher: Fetcher,
                                                                             store: SqliteStore, caplog):  # fmt: skip
    api.add(title="포항 이차전지 \ud83d 소식", originallink="https://www.yna.co.kr/view/AKR9", link="",
            description="이차전지 \udc00설명 😀", received=NOW - timedelta(minutes=5))
    query = urlencode({"query": "포항 이차전지", "sort": "date"})
    request = Request(f"{api.url}?{query}", headers={"X-Naver-Client-Id": "test-client-id",
                                                     "X-Naver-Client-Secret": "test-client-secret"})  # fmt: skip
    with urlopen(request, timeout=10) as answer:
        assert b"\\ud83d" in answer.read()  # the stand-in sends the escape, as the API would
    with caplog.at_level("WARNING"):
        batch = _collector(api, fetcher, store).collect(NOW)
    [item] = batch.items
    assert item.title == "포항 이차전지 \ufffd 소식" and item.body == "이차전지 \ufffd설명 😀"
    assert decode(encode(item)) == item  # the bus can carry it
    assert "naver-포항" in caplog.text and "https://www.yna.co.kr/view/AKR9" in caplog.text and "surrogate" in caplog.text


def test_paging_goes_on_until_a_known_item_appears(api: NaverApi, fetcher: Fetcher, store: SqliteStore):
    for n in range(25):
        _add(api, n, 100 - n)
    collector = _collector(api, fetcher, store, display=10, max_pages=5)
    first = collector.collect(NOW)
    assert len(first.items) == 25 and [s["start"] for s in api.searches()] == ["1", "11", "21"]
    first.finalize(store, NOW)
    for n in range(25, 37):  # 12 new: page 1 all new, page 2 holds known ones, so no page 3
        _add(api, n, 100 - n)
    api.requests.clear()
    second = collector.collect(NOW)
    assert len(second.items) == 12 and [s["start"] for s in api.searches()] == ["1", "11"]
    assert second.skipped_seen == 8


def test_the_naver_entry_and_the_outlets_feed_entry_are_one_item(api: NaverApi, fetcher: Fetcher,
                                                                 store: SqliteStore, http_server):  # fmt: skip
    # The outlet's own feed has the article under a non-URL guid; Naver lists it with originallink.
    feed = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>연합뉴스</title>'
        '<item><title>포항 이차전지 특화단지 "7번째" 소식 &amp; 전망</title>'
        "<link>https://www.yna.co.kr/view/AKR7</link><guid isPermaLink=\"false\">AKR7</guid>"
        "<pubDate>Wed, 18 Nov 2026 06:20:00 +0000</pubDate></item></channel></rss>"
    ).encode()
    http_server.add("/yna.xml", feed, headers={"Content-Type": "application/rss+xml"})
    rss = RssCollector(SourceSettings(name="yna", url=http_server.url("/yna.xml")), fetcher, store)
    feed_batch = rss.collect(NOW)
    feed_batch.finalize(store, NOW)
    _add(api, 7, 20)
    naver_batch = _collector(api, fetcher, store).collect(NOW)
    assert [i.id for i in naver_batch.items] == [feed_batch.items[0].id]  # one id: grouping sees one item
    # and an aggregator entry that only knows the Naver URL resolves to it too
    assert store.claim_urls([("x", ["https://n.news.naver.com/mnews/article/001/0000000007"])], NOW) == [
        feed_batch.items[0].id]


def test_the_daily_budget_is_never_exceeded(api: NaverApi, fetcher: Fetcher, store: SqliteStore):
    for n in range(30):
        _add(api, n, 100 - n)
    collector = _collector(api, fetcher, store, budget=2, display=10, max_pages=5)
    batch = collector.collect(NOW)  # two pages, then the budget stops paging (the pages read are kept)
    assert len(api.requests) == 2 and len(batch.items) == 20
    assert any("daily budget of 2 calls spent" in e for e in batch.errors)
    with pytest.raises(TransientError, match="daily budget of 2 calls spent for 2026-11-18") as caught:
        collector.collect(NOW)
    assert len(api.requests) == 2  # no call made
    assert caught.value.retry_after == seconds_to_reset(NOW) == 8 * 3600
    assert store.spend_quota("NAVER_CLIENT_ID", naver_day(NOW + timedelta(hours=8)), 1, 2) == 1  # a new day


def test_the_scheduler_spreads_naver_queries_within_the_budget_and_health_reports_it(tmp_path: Path):
    settings: Settings = parse({
        "state_dir": str(tmp_path),
        "naver": {"daily_budget": 1000, "paging_share": 0.2},
        "sources": [{"name": f"q{i}", "kind": "naver", "query": f"검색어{i}", "interval": 60} for i in range(10)]
        + [{"name": "feed", "url": "https://example.com/rss", "interval": 60}],
    })  # fmt: skip
    intervals = [scheduled_interval(settings, s) for s in settings.sources]
    assert intervals[-1] == 60  # feeds keep theirs
    assert intervals[0] == pytest.approx(86400 * 10 / 800)  # 10 queries' first pages fit 80 % of 1000
    assert sum(86400 / i for i in intervals[:10]) == pytest.approx(800)
    store = SqliteStore(tmp_path / "state.db")
    store.spend_quota("NAVER_CLIENT_ID", naver_day(NOW), 7, 1000)
    report = budget_report(settings, store, NOW)
    store.close()
    assert report == {"day": "2026-11-18", "calls_today": 7, "daily_budget": 1000, "api_daily_limit": 25_000,
                      "queries": 10, "scheduled_calls_per_day": 800, "budget_left": 993}  # fmt: skip


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (429, {"errorMessage": "Rate limit exceeded. (속도 제한을 초과했습니다.)", "errorCode": "010"}, TransientError,
         "request limit exceeded"),
        (500, {"errorMessage": "System Error (시스템 에러)", "errorCode": "SE99"}, TransientError, "system error"),
        (400, {"errorMessage": "Incorrect query request (잘못된 쿼리요청입니다.)", "errorCode": "SE01"}, PermanentError,
         "check the source's query"),
        (403, {"errorMessage": "Scope Status Invalid : Authentication failed. (권한이 없습니다.)", "errorCode": "024"},
         PermanentError, "check the Client ID and Client Secret"),
        (403, {}, PermanentError, "add the 검색 (Search) API"),
        (429, {}, TransientError, "retry after 7s"),
    ],
)  # fmt: skip
def test_api_errors_map_to_transient_and_permanent_errors(api: NaverApi, fetcher: Fetcher, store: SqliteStore,
                                                          status, body, error, text):  # fmt: skip
    api.retry_after = 7
    api.fail(status, body)
    with pytest.raises(error) as caught:
        _collector(api, fetcher, store).collect(NOW)
    message = str(caught.value)
    assert text in message and f"HTTP {status}" in message and "naver-포항" in message
    assert "test-client-secret" not in message and "test-client-id" not in message


def test_wrong_or_missing_credentials_are_permanent_and_say_which(api: NaverApi, fetcher: Fetcher,
                                                                  store: SqliteStore, monkeypatch):  # fmt: skip
    monkeypatch.setenv("NAVER_CLIENT_SECRET", "wrong")
    with pytest.raises(PermanentError, match=r"authentication failed.*HTTP 401, errorCode 024"):
        _collector(api, fetcher, store).collect(NOW)
    monkeypatch.delenv("NAVER_CLIENT_SECRET")
    with pytest.raises(PermanentError, match=r"\$NAVER_CLIENT_SECRET not set"):
        _collector(api, fetcher, store).collect(NOW)


def test_config_checks_and_defaults():
    source = SourceSettings(name="n", kind="naver", query="포항")
    assert source.url == "https://openapi.naver.com/v1/search/news.json" and source.display == 100
    with pytest.raises(ValueError, match="needs 'query'"):
        SourceSettings(name="n", kind="naver")
    with pytest.raises(ValueError, match="less than or equal to 100"):
        SourceSettings(name="n", kind="naver", query="q", display=101)
    with pytest.raises(ValueError, match="needs 'url'"):
        SourceSettings(name="n")


def test_outlets_come_from_the_maintained_mapping_with_a_fallback():
    assert outlet_for_url("https://biz.chosun.com/x") == "조선비즈"
    assert outlet_for_url("https://m.chosun.com/x") == "조선일보"
    assert outlet_for_url("https://news.kbs.co.kr/news/view.do?ncd=1") == "KBS"
    assert outlet_for_url("https://www.unknown-daily.co.kr/a") == "unknown-daily.co.kr"
    assert outlet_for_url("not a url", "fallback") == "fallback"


def test_sources_test_shows_a_naver_sources_items_with_outlets_and_times(api: NaverApi, tmp_path: Path):
    from tests.e2e.processes import newsradar

    _add(api, 1, 90)
    _add(api, 2, 5, host="www.kyongbuk.co.kr")
    config = tmp_path / "naver.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'var'}\nsources:\n"
        f"  - {{name: 네이버-포항, kind: naver, url: '{api.url}', query: 포항 이차전지}}\n", encoding="utf-8")
    result = newsradar("--config", str(config), "sources", "test",
                       env={"NAVER_CLIENT_ID": "test-client-id", "NAVER_CLIENT_SECRET": "test-client-secret"})
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "OK    네이버-포항: 2 items" in lines[0]
    assert lines[1].strip() == '- 2026-11-18 15:55  포항 이차전지 특화단지 "2번째" 소식 & 전망  [경북일보]'
    assert lines[2].strip() == '- 2026-11-18 14:30  포항 이차전지 특화단지 "1번째" 소식 & 전망  [연합뉴스]'
    assert "test-client-secret" not in result.stdout + result.stderr


def test_a_daemon_poll_reports_the_budget_in_health(api: NaverApi, tmp_path: Path):
    from newsradar.daemon import Daemon

    _add(api, 1, 5)
    settings = parse({"state_dir": str(tmp_path), "http": {"per_host_delay": 0},
                      "sources": [{"name": "n", "kind": "naver", "url": api.url, "query": "포항"}]})  # fmt: skip
    daemon = Daemon(settings, role="collector")
    try:
        [summary] = daemon.poll_all()
        assert summary.new_items == 1 and not summary.error
        info = daemon.metrics.snapshot()["components"]["naver"]["info"]
        assert info["calls_today"] == 1 and info["daily_budget"] == 20_000 and info["queries"] == 1
        assert daemon.metrics.snapshot()["components"]["source:n"]["healthy"]
    finally:
        daemon.close()
    assert json.loads((tmp_path / "health.json").read_text())["components"]["naver"]["info"]["budget_left"] == 19_999


def test_paging_stops_at_the_apis_start_limit(api: NaverApi, fetcher: Fetcher, store: SqliteStore):
    for n in range(1, 1101):  # more results than the API lets anyone page through
        api.add(f"포항 이차전지 {n}", f"https://x.kr/{n}", f"https://x.kr/{n}", "포항 이차전지", NOW - timedelta(seconds=n))
    batch = _collector(api, fetcher, store, budget=100, display=100, max_pages=10).collect(NOW)
    assert [int(s["start"]) for s in api.searches()] == [1, 101, 201, 301, 401, 501, 601, 701, 801, 901]
    assert len(batch.items) == 1000 and all(r[0].startswith("/v1/") for r in api.requests)
