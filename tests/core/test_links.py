"""Links shown to people drop tracking parameters (issue 19), from a real feed to the alert on disk."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest

from collectors.urls import without_tracking
from newsradar.daemon import Daemon
from newsradar.settings import parse
from tests.servers.http import HttpServer


def test_without_tracking_keeps_everything_but_tracking_parameters():
    assert without_tracking("https://x.kr/news/view.php?utm_source=naver&idxno=12&fbclid=abc&Page=2#c1") == (
        "https://x.kr/news/view.php?idxno=12&Page=2#c1")  # order, case and fragment kept
    assert without_tracking("https://X.kr/a?gclid=1&utm_medium=rss") == "https://X.kr/a"
    assert without_tracking("https://x.kr/a?b=1&a=2") == "https://x.kr/a?b=1&a=2"
    assert without_tracking("not a url") == "not a url"


def test_an_alert_links_to_the_article_without_tracking_parameters(http_server: HttpServer, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch):  # fmt: skip
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    link = "https://www.kyongbuk.co.kr/news/articleView.html?idxno=2185&utm_source=rss&utm_medium=feed&fbclid=IwAR0"
    feed = (  # news of two hours ago: recent enough to alert
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>경북일보</title>'
        f"<item><title>포항 이차전지 특화단지 투자 확대</title><link>{link.replace('&', '&amp;')}</link>"
        "<description>포항시가 이차전지 특화단지 기업 세 곳과 투자협약을 맺었다.</description>"
        f"<pubDate>{format_datetime(datetime.now(timezone.utc) - timedelta(hours=2))}</pubDate></item>"
        "</channel></rss>"
    ).encode()
    http_server.add("/feed.xml", feed, headers={"Content-Type": "application/rss+xml"})
    settings = parse({"state_dir": str(tmp_path), "http": {"per_host_delay": 0},
                      "sources": [{"name": "경북일보", "url": http_server.url("/feed.xml")}]})  # fmt: skip
    Daemon(settings).run_once()
    alerts = [p.read_text(encoding="utf-8") for p in (tmp_path / "alerts").rglob("*") if p.is_file()]
    assert alerts, "no alert written"
    assert "링크: https://www.kyongbuk.co.kr/news/articleView.html?idxno=2185\n" in alerts[0]
    assert "utm_" not in alerts[0] and "fbclid" not in alerts[0]
