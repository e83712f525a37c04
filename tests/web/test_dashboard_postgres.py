"""The dashboard of a daemon whose state store is PostgreSQL (a real server): the pages read the stories, copies
and source health the pipeline wrote there, through the dashboard's own pool, and /readyz asks that store."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from collectors.urls import without_tracking
from tests.e2e.feeds import PRESS_COPIES, UNRELATED, rss
from tests.servers.http import HttpServer
from tests.web.dashboard import serving, web_settings

XML = {"Content-Type": "application/rss+xml; charset=utf-8"}


def test_dashboard_pages_on_a_postgres_state_store(
    tmp_path: Path, http_server: HttpServer, postgres_dsn: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_WEBHOOK_URL", "NEWSRADAR_OPS_WEBHOOK_URL", "NEWSRADAR_WEB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NEWSRADAR_DATABASE_URL", postgres_dsn)
    http_server.add("/regional.xml", rss(PRESS_COPIES + UNRELATED), headers=XML)
    http_server.add("/broken.xml", b"gone", status=410)
    settings = web_settings(tmp_path, [
        {"name": "regional-feed", "url": http_server.url("/regional.xml")},
        {"name": "broken-feed", "url": http_server.url("/broken.xml")},
    ], state={"kind": "postgres"}, source_health={"failures": 1})
    with serving(settings) as (daemon, address):
        assert type(daemon.store).__name__ == "PostgresStore"
        stories = httpx.get(address)
        assert stories.status_code == 200 and PRESS_COPIES[0].title in stories.text
        assert "3개 매체 보도" in stories.text and "고장 난 소스 1개" in stories.text
        assert not any(item.title in stories.text for item in UNRELATED)
        [story] = daemon.store.recent_stories()
        page = httpx.get(f"{address}story/{story.id}")
        assert page.status_code == 200 and all(without_tracking(item.link) in page.text for item in PRESS_COPIES)
        sources = httpx.get(f"{address}sources")
        assert sources.status_code == 200 and "410" in sources.text and "실패" in sources.text
        ready = httpx.get(f"{address}readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["store"] == "ok", ready.text
