"""Canonical URLs and item ids."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from collectors.urls import canonical_url, item_id, same_site, without_tracking
from newsradar.events import stable_id


def test_canonical_url_lowercases_scheme_and_host_but_keeps_path_case() -> None:
    assert canonical_url("HTTPS://WWW.Example.KR/News/View.HTML") == "https://www.example.kr/News/View.HTML"


def test_canonical_url_drops_default_port_fragment_and_tracking_params() -> None:
    url = "http://news.example.kr:80/a?utm_source=rss&idxno=12&fbclid=IwAR0&gclid=x&ref=main&ncid=n1#comments"
    assert canonical_url(url) == "http://news.example.kr/a?idxno=12"
    assert canonical_url("https://news.example.kr:443/a") == "https://news.example.kr/a"
    assert canonical_url("https://news.example.kr:8443/a") == "https://news.example.kr:8443/a"


def test_canonical_url_sorts_remaining_params_and_keeps_their_raw_encoding() -> None:
    # EUC-KR percent-escapes (포항) must survive untouched: decoding them as UTF-8 would break the link.
    url = "https://search.example.kr/s?q=%C6%F7%C7%D7&page=2&utm_campaign=x"
    assert canonical_url(url) == "https://search.example.kr/s?page=2&q=%C6%F7%C7%D7"
    assert canonical_url("https://a.example/x?b=2&a=1") == canonical_url("https://a.example/x?a=1&b=2")


def test_canonical_url_adds_root_path_and_strips_whitespace() -> None:
    assert canonical_url("  https://Example.kr  ") == "https://example.kr/"


def test_unparsable_url_is_returned_stripped() -> None:
    assert canonical_url(" http://[::1 ") == "http://[::1"


@settings(max_examples=400)
@given(st.text())
@example("\x08\x850")  # urlsplit strips C0 controls that str.strip keeps
@example("0 #")  # dropping the fragment leaves a trailing space
@example("A://:²")  # a non-ASCII digit in the port
def test_canonical_url_is_idempotent_on_any_text(text: str) -> None:
    once = canonical_url(text)
    assert canonical_url(once) == once


_URL = st.builds(
    lambda scheme, host, port, path, query, frag: f"{scheme}://{host}{port}{path}{query}{frag}",
    st.sampled_from(["http", "HTTP", "https", "HtTpS"]),
    st.from_regex(r"[A-Za-z0-9.-]{1,20}", fullmatch=True),
    st.sampled_from(["", ":80", ":443", ":8080"]),
    st.from_regex(r"(/[A-Za-z0-9%._~가-힣-]{0,8}){0,4}", fullmatch=True),
    st.lists(
        st.tuples(
            st.sampled_from(["utm_source", "idxno", "fbclid", "q", "page", "ref", "A"]),
            st.from_regex(r"[A-Za-z0-9%+]{0,6}", fullmatch=True),
        ),
        max_size=5,
    ).map(lambda pairs: ("?" + "&".join(f"{k}={v}" for k, v in pairs)) if pairs else ""),
    st.sampled_from(["", "#top", "#"]),
)


@settings(max_examples=400)
@given(_URL)
def test_canonical_url_is_idempotent_on_url_shaped_text(url: str) -> None:
    once = canonical_url(url)
    assert canonical_url(once) == once
    assert "utm_source" not in once and "fbclid" not in once and "#" not in once


@settings(max_examples=400)
@given(_URL)
def test_links_shown_to_people_lose_only_tracking_parameters(url: str) -> None:
    shown = without_tracking(url)
    assert without_tracking(shown) == shown
    assert canonical_url(shown) == canonical_url(url)  # the same article: nothing but tracking went
    assert "utm_source" not in shown and "fbclid" not in shown and "ref=" not in shown


def test_item_id_prefers_guid_and_canonicalises_url_guids() -> None:
    link = canonical_url("https://news.example.kr/view?idxno=5&utm_source=rss")
    # A URL guid gives the same id as the same URL reached as a link.
    assert item_id("https://NEWS.example.kr/view?idxno=5#x", link) == item_id(None, link) == stable_id(link)
    # An opaque guid wins over the link, so an edited link keeps the item's id ...
    edited = canonical_url("https://news.example.kr/view?idxno=5&title=changed")
    assert item_id("news-5", link) == item_id("news-5", edited)
    # ... but is scoped by host, so two sites numbering posts alike do not collide.
    assert item_id("5", "https://a.example/x") != item_id("5", "https://b.example/x")
    # A blank guid falls back to the link.
    assert item_id("  ", link) == stable_id(link)


def test_same_site_ignores_case_and_www() -> None:
    assert same_site("www.Example.kr", "example.kr")
    assert not same_site("evil.example", "example.kr")
    assert not same_site("", "")
