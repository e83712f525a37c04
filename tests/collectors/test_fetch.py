"""The HTTP layer against a real local server: validators, caps, deadlines, redirects, statuses, robots."""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from collectors.fetch import Fetcher, parse_retry_after
from newsradar.errors import ContentError, PermanentError, TransientError
from tests.collectors.conftest import small_settings
from tests.servers.http import HttpServer, gzip_bomb, repeat_bytes

PAGE = "<html><body><p>포항 이차전지 특화단지</p></body></html>".encode()


@pytest.fixture
def fetcher_with() -> Iterator[Callable[..., Fetcher]]:
    """Makes Fetchers on ``small_settings(**overrides)``; all are closed at teardown."""
    made: list[Fetcher] = []

    def make(**overrides: object) -> Fetcher:
        made.append(Fetcher(small_settings(**overrides)))
        return made[-1]

    yield make
    for client in made:
        client.close()


def run_all(threads: list[threading.Thread]) -> None:
    """Start every thread, then wait for all of them."""
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_plain_get_sends_our_user_agent_and_reports_headers(
    http_server: HttpServer, fetcher: Fetcher
) -> None:
    http_server.add("/a", PAGE, headers={"Content-Type": "text/html; charset=UTF-8", "X-Thing": "1"})
    result = fetcher.get(http_server.url("/a"), source="t")
    assert (result.status, result.body, result.not_modified) == (200, PAGE, False)
    assert (result.content_type, result.declared_charset) == ("text/html", "UTF-8")
    assert result.headers["x-thing"] == "1"
    assert http_server.requests[0].headers["user-agent"].startswith("newsradar/")
    assert "gzip" in http_server.requests[0].headers["accept-encoding"]


def test_conditional_get_with_etag_and_last_modified(http_server: HttpServer, fetcher: Fetcher) -> None:
    lm = "Tue, 03 Dec 2024 04:57:00 GMT"
    http_server.add("/feed", PAGE, etag='"v1"', last_modified=lm)
    first = fetcher.get(http_server.url("/feed"), source="t")
    assert (first.etag, first.last_modified) == ('"v1"', lm)
    second = fetcher.get(
        http_server.url("/feed"), source="t", etag=first.etag, last_modified=first.last_modified
    )
    assert second.not_modified and second.status == 304 and second.body == b""
    assert (second.etag, second.last_modified) == ('"v1"', lm)
    assert http_server.requests[1].headers["if-none-match"] == '"v1"'
    assert http_server.requests[1].headers["if-modified-since"] == lm
    # Only Last-Modified known (no ETag on the route): If-Modified-Since alone gives a 304 too.
    http_server.add("/lm", PAGE, last_modified=lm)
    assert fetcher.get(http_server.url("/lm"), source="t", last_modified=lm).not_modified


def test_gzip_body_is_inflated(http_server: HttpServer, fetcher: Fetcher) -> None:
    http_server.add("/z", PAGE * 50, gzip=True)
    assert fetcher.get(http_server.url("/z"), source="t").body == PAGE * 50


def test_raw_deflate_body_is_inflated(http_server: HttpServer, fetcher: Fetcher) -> None:
    import zlib

    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    raw = compressor.compress(PAGE) + compressor.flush()
    http_server.add("/d", raw, headers={"Content-Encoding": "deflate"})
    assert fetcher.get(http_server.url("/d"), source="t").body == PAGE


def test_100_mb_streamed_body_hits_the_cap(http_server: HttpServer, fetcher: Fetcher) -> None:
    http_server.add("/huge", repeat_bytes(100_000_000))  # chunked: no Content-Length to refuse early
    with pytest.raises(ContentError, match="cap") as err:
        fetcher.get(http_server.url("/huge"), source="big-source")
    assert "big-source" in str(err.value) and "/huge" in str(err.value)
    assert http_server.requests[0].path == "/huge"


def test_declared_content_length_over_the_cap_is_refused_before_reading(
    http_server: HttpServer, fetcher_with: Callable[..., Fetcher]
) -> None:
    http_server.add("/big", b"x" * 300_000)
    with pytest.raises(ContentError, match="Content-Length 300000"):
        fetcher_with(max_bytes=100_000).get(http_server.url("/big"), source="t")


def test_gzip_bomb_is_refused_by_the_decompressed_cap(http_server: HttpServer, fetcher: Fetcher) -> None:
    bomb = gzip_bomb(50_000_000)
    assert len(bomb) < 100_000  # the premise: tiny on the wire
    http_server.add("/bomb", bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(ContentError, match="decompressed"):
        fetcher.get(http_server.url("/bomb"), source="t")


def test_gzip_within_the_cap_passes(http_server: HttpServer, fetcher_with: Callable[..., Fetcher]) -> None:
    body = b"a" * 900_000
    http_server.add("/ok", gzip.compress(body), headers={"Content-Encoding": "gzip"})
    assert fetcher_with(max_bytes=900_000).get(http_server.url("/ok"), source="t").body == body


def test_dripping_server_is_cut_off_by_the_total_deadline(http_server: HttpServer, fetcher: Fetcher) -> None:
    # Two bytes a second: every read succeeds well within read_timeout=1, only the total deadline (2 s) helps.
    http_server.add("/drip", b"x" * 200, drip_bytes_per_sec=2)
    with pytest.raises(TransientError, match="no complete response within"):
        fetcher.get(http_server.url("/drip"), source="t")


def test_server_dripping_its_headers_is_cut_off_by_the_total_deadline(
    http_server: HttpServer, fetcher: Fetcher
) -> None:
    # The status line and headers themselves arrive a few bytes a second: no read ever times out.
    head = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 200 + b"\r\nContent-Length: 2\r\n\r\nok"
    http_server.add("/slow-head", head, raw=True, drip_bytes_per_sec=4)
    with pytest.raises(TransientError, match="no complete response within"):
        fetcher.get(http_server.url("/slow-head"), source="t")


def test_server_that_never_answers_gives_a_read_timeout(
    http_server: HttpServer, fetcher_with: Callable[..., Fetcher]
) -> None:
    http_server.add("/silent", never_answer=True)
    client = fetcher_with(read_timeout=0.5, total_timeout=5.0)
    with pytest.raises(TransientError, match="timed out"):
        client.get(http_server.url("/silent"), source="t")


def test_connection_refused_is_transient(fetcher: Fetcher) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientError, match="connection failed"):
        fetcher.get(f"http://127.0.0.1:{port}/", source="t")


def test_truncated_body_is_transient(http_server: HttpServer, fetcher: Fetcher) -> None:
    http_server.add("/cut", PAGE * 10, truncate_at=20)
    with pytest.raises(TransientError):
        fetcher.get(http_server.url("/cut"), source="t")


def test_redirects_within_the_site_are_followed(http_server: HttpServer, fetcher: Fetcher) -> None:
    http_server.add("/old", redirect_to="/mid", status=301)
    http_server.add("/mid", redirect_to=http_server.url("/new"), status=307)
    http_server.add("/new", PAGE)
    result = fetcher.get(http_server.url("/old"), source="t")
    assert result.url == http_server.url("/new") and result.body == PAGE


def test_redirect_loop_is_a_permanent_error(http_server: HttpServer, fetcher: Fetcher) -> None:
    http_server.add("/a", redirect_to="/b")
    http_server.add("/b", redirect_to="/a")
    with pytest.raises(PermanentError, match="redirect loop"):
        fetcher.get(http_server.url("/a"), source="t")


def test_redirect_to_an_invalid_url_is_a_permanent_error(http_server: HttpServer, fetcher: Fetcher) -> None:
    http_server.add("/bad", redirect_to="http://[::1/x")
    with pytest.raises(PermanentError, match="invalid URL"):
        fetcher.get(http_server.url("/bad"), source="t")


def test_too_many_redirects(http_server: HttpServer, fetcher: Fetcher) -> None:
    for i in range(6):
        http_server.add(f"/r{i}", redirect_to=f"/r{i + 1}")
    with pytest.raises(PermanentError, match="more than 3 redirects"):
        fetcher.get(http_server.url("/r0"), source="t")


def test_cross_host_redirect_is_refused_unless_allowed(http_server: HttpServer, fetcher: Fetcher) -> None:
    http_server.add("/go", redirect_to=http_server.url("/landing", host="localhost"))
    http_server.add("/landing", PAGE)
    with pytest.raises(PermanentError, match=r"another host \(localhost\)") as err:
        fetcher.get(http_server.url("/go"), source="t")
    assert "allowed_hosts" in str(err.value)
    assert http_server.hits("/landing") == 0
    result = fetcher.get(http_server.url("/go"), source="t", allowed_hosts=["localhost"])
    assert result.body == PAGE and result.url.startswith("http://localhost:")


def test_429_with_retry_after_seconds(http_server: HttpServer, fetcher: Fetcher) -> None:
    http_server.add("/busy", b"slow down", status=429, headers={"Retry-After": "120"})
    with pytest.raises(TransientError) as err:
        fetcher.get(http_server.url("/busy"), source="t")
    assert err.value.retry_after == 120.0 and "429" in str(err.value)


def test_503_with_retry_after_date_is_capped(http_server: HttpServer, fetcher: Fetcher) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(hours=5), usegmt=True)
    http_server.add("/down", b"", status=503, headers={"Retry-After": later})
    with pytest.raises(TransientError) as err:
        fetcher.get(http_server.url("/down"), source="t")
    assert err.value.retry_after == 300.0  # max_retry_after in small_settings


def test_parse_retry_after() -> None:
    assert parse_retry_after("30", 600) == 30.0
    assert parse_retry_after("garbage", 600) is None
    assert parse_retry_after(None, 600) is None
    past = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(past, 600) == 0.0


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, TransientError),
        (502, TransientError),
        (408, TransientError),
        (404, PermanentError),
        (403, PermanentError),
        (410, PermanentError),
    ],
)
def test_status_codes_map_onto_the_error_tree(
    http_server: HttpServer, fetcher: Fetcher, status: int, error: type[Exception]
) -> None:
    http_server.add("/s", b"nope", status=status)
    with pytest.raises(error, match=f"HTTP {status}") as err:
        fetcher.get(http_server.url("/s"), source="src-name")
    assert type(err.value) is error and "src-name" in str(err.value)


def test_robots_disallow_is_honoured_only_when_asked(http_server: HttpServer, fetcher: Fetcher) -> None:
    http_server.robots("User-agent: *\nDisallow: /private/\n")
    http_server.add("/private/page", PAGE)
    http_server.add("/public/page", PAGE)
    with pytest.raises(PermanentError, match="robots.txt .* disallows"):
        fetcher.get(http_server.url("/private/page"), source="t", check_robots=True)
    assert http_server.hits("/private/page") == 0
    assert fetcher.get(http_server.url("/public/page"), source="t", check_robots=True).body == PAGE
    assert fetcher.get(http_server.url("/private/page"), source="t").body == PAGE  # feeds: not checked
    assert http_server.hits("/robots.txt") == 1  # cached per host


def test_robots_rules_for_our_agent(http_server: HttpServer, fetcher: Fetcher) -> None:
    http_server.robots("User-agent: newsradar\nDisallow: /\n\nUser-agent: *\nAllow: /\n")
    http_server.add("/x", PAGE)
    with pytest.raises(PermanentError, match="disallows"):
        fetcher.get(http_server.url("/x"), source="t", check_robots=True)


def test_missing_robots_txt_allows_everything(http_server: HttpServer, fetcher: Fetcher) -> None:
    http_server.add("/x", PAGE)
    assert fetcher.get(http_server.url("/x"), source="t", check_robots=True).body == PAGE
    assert http_server.hits("/robots.txt") == 1


def test_robots_txt_server_error_is_transient(http_server: HttpServer, fetcher: Fetcher) -> None:
    http_server.add("/robots.txt", b"", status=500)
    http_server.add("/x", PAGE)
    with pytest.raises(TransientError, match="robots.txt"):
        fetcher.get(http_server.url("/x"), source="t", check_robots=True)
    assert http_server.hits("/x") == 0


def test_respect_robots_false_skips_the_check(http_server: HttpServer, fetcher_with: Callable[..., Fetcher]) -> None:
    http_server.robots("User-agent: *\nDisallow: /\n")
    http_server.add("/x", PAGE)
    client = fetcher_with(respect_robots=False)
    assert client.get(http_server.url("/x"), source="t", check_robots=True).body == PAGE


def test_per_host_concurrency_limit_holds_across_threads(
    http_server: HttpServer, fetcher_with: Callable[..., Fetcher]
) -> None:
    http_server.add("/slow", PAGE, delay=0.2)
    client = fetcher_with(per_host_concurrency=1)
    errors: list[Exception] = []

    def worker() -> None:
        try:
            client.get(http_server.url("/slow"), source="t")
        except Exception as exc:  # noqa: BLE001 - a worker thread's failure is collected and asserted below
            errors.append(exc)

    run_all([threading.Thread(target=worker) for _ in range(4)])
    assert not errors and http_server.hits("/slow") == 4
    assert http_server.max_in_flight == 1


def test_two_slots_per_host_allow_overlap(http_server: HttpServer, fetcher_with: Callable[..., Fetcher]) -> None:
    http_server.add("/slow", PAGE, delay=0.3)
    client = fetcher_with(per_host_concurrency=2)
    url = http_server.url("/slow")
    run_all([threading.Thread(target=client.get, args=(url,), kwargs={"source": "t"}) for _ in range(2)])
    assert http_server.max_in_flight == 2


def test_file_urls_are_read_with_the_cap(tmp_path: Path, fetcher: Fetcher) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(PAGE)
    result = fetcher.get(feed.as_uri(), source="demo")
    assert result.body == PAGE and result.etag is None and not result.not_modified
    big = tmp_path / "big.xml"
    big.write_bytes(b"x" * 1_000_001)
    with pytest.raises(ContentError, match="cap"):
        fetcher.get(big.as_uri(), source="demo")
    with pytest.raises(PermanentError, match="cannot read"):
        fetcher.get((tmp_path / "missing.xml").as_uri(), source="demo")


def test_unsupported_scheme_is_permanent(fetcher: Fetcher) -> None:
    with pytest.raises(PermanentError, match="unsupported URL"):
        fetcher.get("ftp://example.kr/feed.xml", source="t")
