"""Hostile text on the dashboard, in a real browser: the reliability suite's hostile-text cases come through the
whole pipeline from a local feed, and links a collector might let through (``javascript:``, ``data:``, a quote
with ``onmouseover``, bidi overrides) are written into the state store as the grouping stage writes stories.
Every page must show them as plain text: nothing runs, restyles, navigates or reorders, and links go only to
http(s)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By

from newsradar.events import Article, Story
from newsradar.store import StoryWrite
from tests.reliability.news import XML, rss
from tests.reliability.test_hostile_text import HOSTILE, RLO
from tests.servers.browser import ARTIFACTS, chromium, screenshot
from tests.servers.http import HttpServer
from tests.web.dashboard import BIDI, inert_problems, serving, web_settings

PWN = "window.__pwned=1"
LINKS = [
    f"javascript:{PWN}",
    f"JaVaScRiPt:{PWN}",
    " javascript:alert(1)",
    f"data:text/html,<script>{PWN}</script>",
    "vbscript:msgbox(1)",
    f'https://evil.example/" onmouseover="{PWN}" x="',
    f"https://evil.example/{RLO}lmth.kcip",
    "https://user:pw@evil.example/",
    "//evil.example/no-scheme",
]
HEADLINE = f'포항 이차전지 "><script>{PWN}</script><img src=x onerror="{PWN}"> " onmouseover="{PWN}" {RLO}조작'
OUTLET = f'<a href="javascript:{PWN}">매체</a>" onmouseover="{PWN}'


@pytest.fixture(autouse=True)
def _no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_WEBHOOK_URL", "NEWSRADAR_OPS_WEBHOOK_URL", "NEWSRADAR_WEB_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def _planted(now: datetime) -> list[StoryWrite]:
    """One story whose lead and copies carry the hostile links, as the grouping stage would write it."""
    copies = [Article(id=f"evil-{i}", source="hostile-text", outlet=OUTLET, url=url, title=f"{HEADLINE} #{i}",
                      text="", published_at=now - timedelta(minutes=i), fetched_at=now) for i, url in enumerate(LINKS)]
    lead = copies[0]
    story = Story(id="planted-evil", lead=lead, first_seen=now, outlets=(OUTLET,), copies=len(copies),
                  terms=("포항", f"<b>{RLO}이차전지</b>"), snippet=f"포항 <script>{PWN}</script> 이차전지 {RLO}끝",
                  highlights=((0, 2), (40, 9999), (-1, 3)))
    return [StoryWrite(story, article_id=c.id, copy=c) for c in copies]


def test_hostile_text_renders_inert_on_every_page(tmp_path: Path, http_server: HttpServer) -> None:
    body = rss(HOSTILE).replace("\r\n", "&#13;&#10;")
    http_server.add("/hostile.xml", body.encode("utf-8"), headers=XML)
    settings = web_settings(tmp_path, [{"name": f'hostile-text "><script>{PWN}</script>',
                                        "url": http_server.url("/hostile.xml")}])
    with serving(settings) as (daemon, address), chromium(width=1280, height=1400) as driver:
        daemon.store.write_stories(_planted(datetime.now(timezone.utc)), datetime.now(timezone.utc))
        driver.get(address)
        rows = driver.find_elements(By.CSS_SELECTOR, "li.story")
        assert len(rows) >= len(HOSTILE), [r.text[:80] for r in rows]  # every hostile story is listed
        assert inert_problems(driver) == []
        text = driver.find_element(By.TAG_NAME, "body").text
        assert "<script>window.__pwned=1</script>" in text  # shown as text, not run
        assert "&lt;" not in text  # escaped once, not twice
        screenshot(driver, ARTIFACTS / "dashboard-hostile-stories.png")

        story_links = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "li.story a.headline")]
        assert all(link.startswith(address) for link in story_links)
        for link in story_links:
            driver.get(link)
            problems = inert_problems(driver)
            assert problems == [], (link, problems)
            for a in driver.find_elements(By.CSS_SELECTOR, "a[href]"):
                href = a.get_attribute("href")
                assert href.startswith(address) or href.startswith("https://news.example.kr/") or \
                    href == "https://evil.example/%22%20onmouseover=%22window.__pwned=1%22%20x=%22", href
        driver.get(f"{address}story/planted-evil")
        copies = driver.find_elements(By.CSS_SELECTOR, "#copies tbody tr")
        assert len(copies) == len(LINKS)
        linked = [c for c in copies if c.find_elements(By.TAG_NAME, "a")]
        assert len(linked) == 1  # only the https URL with a quote in it (escaped in the attribute) stays a link
        assert sum("열 수 없는 링크" in c.text for c in copies) == len(LINKS) - 1
        assert not any(ch in driver.find_element(By.TAG_NAME, "body").text for ch in BIDI)
        assert inert_problems(driver) == []
        screenshot(driver, ARTIFACTS / "dashboard-hostile-story.png")

        driver.get(f"{address}sources")
        assert inert_problems(driver) == []
        assert f"<script>{PWN}</script>" in driver.find_element(By.CSS_SELECTOR, "tr.source").text
        driver.get(f"{address}?q=<script>&term=<b>{RLO}")
        assert inert_problems(driver) == []
        assert driver.find_element(By.NAME, "q").get_attribute("value") == "<script>"

        for path in ("", "story/planted-evil", "sources"):
            response = httpx.get(f"{address}{path}")
            csp = response.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "script-src" not in csp.replace("script-src 'none'", "")
            assert "<script" not in response.text.replace("&lt;script", "")
            assert response.headers["x-content-type-options"] == "nosniff"
