"""Charset decoding: declared charsets in order, EUC-KR read as CP949, detection, counted replacements."""

from __future__ import annotations

import codecs
import logging

import feedparser
import pytest

from collectors.charset import decode_bytes, normalize_charset, xml_as_utf8
from tests.collectors.conftest import shared_dir

# 똠 and 햏 exist in CP949 but not in EUC-KR (KS X 1001): real Korean text breaks strict EUC-KR decoders.
CP949_ONLY = "똠방각하 햏자 이차전지 특화단지"


def test_cp949_only_bytes_declared_euc_kr_in_http_header_decode_exactly() -> None:
    body = f"<p>{CP949_ONLY}</p>".encode("cp949")
    with pytest.raises(UnicodeDecodeError):
        body.decode("euc-kr")  # the premise: a strict EUC-KR decoder fails on these bytes
    decoded = decode_bytes(body, http_charset="euc-kr", kind="html")
    assert decoded.text == f"<p>{CP949_ONLY}</p>"
    assert (decoded.encoding, decoded.replaced) == ("cp949", 0)


@pytest.mark.parametrize("label", ["EUC-KR", "ks_c_5601-1987", "x-windows-949", "KS_C_5601", "uhc", "korean"])
def test_korean_labels_map_to_cp949(label: str) -> None:
    assert normalize_charset(label) == "cp949"


def test_xml_declaration_is_honoured_when_http_says_nothing() -> None:
    body = f'<?xml version="1.0" encoding="euc-kr"?><rss><title>{CP949_ONLY}</title></rss>'.encode("cp949")
    decoded = decode_bytes(body, http_charset=None, kind="xml")
    assert CP949_ONLY in decoded.text and decoded.encoding == "cp949"


def test_html_meta_charset_both_forms() -> None:
    for head in (
        '<meta charset="euc-kr">',
        '<meta http-equiv="Content-Type" content="text/html; charset=EUC-KR">',
    ):
        body = f"<html><head>{head}</head><body>{CP949_ONLY}</body></html>".encode("cp949")
        decoded = decode_bytes(body, http_charset=None, kind="html")
        assert CP949_ONLY in decoded.text, head


def test_http_charset_outranks_the_document_declaration() -> None:
    body = f'<?xml version="1.0" encoding="iso-8859-1"?><t>{CP949_ONLY}</t>'.encode("cp949")
    assert CP949_ONLY in decode_bytes(body, http_charset="euc-kr", kind="xml").text


def test_forced_encoding_wins_over_everything() -> None:
    body = '<meta charset="utf-8">포항'.encode("cp949")
    decoded = decode_bytes(body, http_charset="utf-8", kind="html", forced="euc-kr")
    assert decoded.text.endswith("포항") and decoded.encoding == "cp949"


def test_byte_order_marks() -> None:
    assert decode_bytes(codecs.BOM_UTF8 + "포항".encode(), http_charset="euc-kr", kind="html").text == "포항"
    utf16 = codecs.BOM_UTF16_LE + "<rss>포항</rss>".encode("utf-16-le")
    assert decode_bytes(utf16, http_charset=None, kind="xml").text == "<rss>포항</rss>"


def test_undeclared_cp949_is_detected() -> None:
    body = (
        "<html><body>" + "포항시가 이차전지 특화단지 기반시설 공사에 들어갔다. " * 20 + "</body></html>"
    ).encode("cp949")
    decoded = decode_bytes(body, http_charset=None, kind="html")
    assert "이차전지 특화단지" in decoded.text and decoded.replaced == 0


def test_wrong_declared_charset_is_recovered_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    body = ("<p>" + "포항 이차전지 " * 10 + "</p>").encode("utf-8")
    with caplog.at_level(logging.WARNING, logger="collectors.charset"):
        decoded = decode_bytes(body, http_charset="euc-kr", kind="html", where="test-source: http://x/")
    assert "포항 이차전지" in decoded.text and decoded.encoding == "utf-8" and decoded.replaced == 0
    assert any("test-source" in r.getMessage() and "does not fit" in r.getMessage() for r in caplog.records)


def test_latin1_label_on_korean_utf8_page_is_not_mojibake() -> None:
    body = '<meta charset="iso-8859-1"><p>포항 이차전지</p>'.encode()
    assert "포항 이차전지" in decode_bytes(body, http_charset=None, kind="html").text


def test_invalid_bytes_are_replaced_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    body = "포항 ".encode() + b"\xff\xfe\xff" + " 이차전지 ".encode() + b"\xc3" + "끝".encode()
    with caplog.at_level(logging.WARNING, logger="collectors.charset"):
        decoded = decode_bytes(body, http_charset="utf-8", kind="html", where="bad-source: http://x/")
    assert decoded.text.startswith("포항 ") and "이차전지" in decoded.text and decoded.text.endswith("끝")
    assert decoded.replaced == decoded.text.count("\ufffd") == 4
    assert any("bad-source" in r.getMessage() and "4 undecodable" in r.getMessage() for r in caplog.records)


def test_unknown_label_is_ignored_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="collectors.charset"):
        decoded = decode_bytes("포항".encode(), http_charset="x-no-such-charset", kind="html", where="src")
    assert decoded.text == "포항"
    assert any("x-no-such-charset" in r.getMessage() for r in caplog.records)


def test_xml_as_utf8_rewrites_the_declaration_so_feedparser_does_not_guess() -> None:
    text = (
        f'<?xml version="1.0" encoding="euc-kr" ?><rss version="2.0"><channel><title>{CP949_ONLY}</title>'
        "</channel></rss>"
    )
    data = xml_as_utf8(text)
    assert data.startswith(b'<?xml version="1.0" encoding="utf-8" ?>')
    parsed = feedparser.parse(data)
    assert parsed.feed.title == CP949_ONLY and not parsed.bozo


@pytest.mark.parametrize(
    "name",
    [
        "encoding__euc-kr.xml",
        "encoding__euc-kr-item.xml",
        "encoding__euc-kr-attribute.xml",
        "illformed__chardet__euckr.xml",
    ],
)
def test_feedparser_encoding_fixtures_from_the_corpus(name: str) -> None:
    path = shared_dir("corpus", "feeds-euckr", "feedparser") / name
    decoded = decode_bytes(path.read_bytes(), http_charset=None, kind="xml", where=name)
    assert decoded.replaced == 0
    parsed = feedparser.parse(xml_as_utf8(decoded.text))
    if name == "illformed__chardet__euckr.xml":  # no declaration at all: detected
        assert parsed.entries[0].title == "EUC-KR 에서 TypeKey 한글닉네임 표시하기"
    elif name == "encoding__euc-kr.xml":
        assert parsed.feed.title == "\ub144"
    else:
        assert "\ub144" in parsed.entries[0].description


def test_undeclared_korean_pages_from_the_corpus_are_detected() -> None:
    folder = shared_dir("corpus", "feeds-euckr", "EUC-KR")
    for name in ("_chromium_windows-949_with_no_encoding_specified.html", "_mozilla_bug9357_text.html"):
        decoded = decode_bytes((folder / name).read_bytes(), http_charset=None, kind="html", where=name)
        hangul = sum("\uac00" <= c <= "\ud7a3" for c in decoded.text)
        assert decoded.replaced == 0 and hangul >= 10, (name, decoded.encoding)
