"""The real Korean feeds of ../shared/corpus/feeds-euckr, served by the local server, parse to Hangul items.

27 EUC-KR blog and wire feeds (2004–2010) and one that declares euc-kr but is only valid as CP949. Served
as ``text/xml`` without a charset, so the XML declaration decides, as it does on the real sites.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path

import pytest

from collectors.fetch import Fetcher
from collectors.rss import RssCollector
from newsradar.settings import SourceSettings
from newsradar.store import Store
from tests.collectors.conftest import SHARED, shared_dir
from tests.servers.http import HttpServer

HANGUL = re.compile("[\uac00-\ud7a3]")
FEEDS = SHARED / "corpus" / "feeds-euckr"


def corpus_feeds() -> list[str]:
    """Feed paths relative to FEEDS; empty when ../shared is absent (the test then skips)."""
    return sorted(
        str(p.relative_to(FEEDS)) for p in FEEDS.glob("*/*.xml") if p.parent.name in ("EUC-KR", "CP949")
    )


@pytest.mark.parametrize("name", corpus_feeds() or ["(corpus absent)"])
def test_real_korean_feed_parses_to_hangul_items(
    name: str,
    http_server: HttpServer,
    fetcher: Fetcher,
    store: Store,
    now: datetime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder = shared_dir("corpus", "feeds-euckr")
    body = (folder / name).read_bytes()
    http_server.add("/feed.xml", body, headers={"Content-Type": "text/xml"})
    source = SourceSettings(name=Path(name).stem, url=http_server.url("/feed.xml"))
    with caplog.at_level(logging.WARNING):
        batch = RssCollector.from_settings(source, fetcher, store).collect(now)
    assert batch.items, f"{name}: no items"
    assert not [r.getMessage() for r in caplog.records if "undecodable" in r.getMessage()]
    assert not [e for e in batch.errors if "no link" not in e], batch.errors
    for item in batch.items:
        assert HANGUL.search(item.title) or HANGUL.search(item.body), (name, item.title)
        assert "\ufffd" not in item.title and "\ufffd" not in item.body
    assert any(HANGUL.search(i.title) for i in batch.items) or name.endswith("scarletkh2.egloos.com.xml")


def test_the_cp949_feed_keeps_the_bytes_euc_kr_cannot_decode(
    http_server: HttpServer, fetcher: Fetcher, store: Store, now: datetime
) -> None:
    path = shared_dir("corpus", "feeds-euckr", "CP949") / "ricanet.com.xml"
    body = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        body.decode("euc-kr")  # the premise, per the corpus manifest
    http_server.add("/ricanet.xml", body, headers={"Content-Type": "text/xml; charset=euc-kr"})
    source = SourceSettings(name="ricanet", url=http_server.url("/ricanet.xml"))
    batch = RssCollector.from_settings(source, fetcher, store).collect(now)
    expected = body.decode("cp949")
    assert len(batch.items) == expected.count("<item>")
    assert all(item.title in expected for item in batch.items)
