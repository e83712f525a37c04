"""The dashboard in a real browser (Debian's headless Chromium): a daemon fed by our local feed server, its
Stories, Story and Sources pages checked for content, and screenshots kept under var/test-artifacts/."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from collectors.urls import without_tracking
from newsradar.errors import StateError
from newsradar.store import Store
from tests.e2e.feeds import DISTINCT, PRESS_COPIES, UNRELATED, rss
from tests.servers.browser import ARTIFACTS, chromium, screenshot
from tests.servers.http import HttpServer
from tests.servers.slack import TOKEN, SlackStandIn
from tests.web.dashboard import inert_problems, resources_outside, serving, then_new_page, web_settings

XML = {"Content-Type": "application/rss+xml; charset=utf-8"}
EXACT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} KST")


@pytest.fixture
def bot_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    for name in ("SLACK_WEBHOOK_URL", "NEWSRADAR_OPS_WEBHOOK_URL", "NEWSRADAR_WEB_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def _sources(http_server: HttpServer) -> list[dict]:
    http_server.add("/regional.xml", rss(PRESS_COPIES + UNRELATED + DISTINCT[:4]), headers=XML)
    http_server.add("/broken.xml", b"<h1>503 Service Unavailable</h1>", status=503)
    return [
        {"name": "regional-feed", "url": http_server.url("/regional.xml")},
        {"name": "broken-feed", "url": http_server.url("/broken.xml")},
        {"name": "retired-feed", "url": http_server.url("/retired.xml"), "enabled": False},
    ]



def test_stories_story_and_sources_pages_in_a_real_browser(
    tmp_path: Path, http_server: HttpServer, slack_server: SlackStandIn, bot_token: None,
) -> None:
    settings = web_settings(
        tmp_path, _sources(http_server), slack={"base_url": slack_server.base_url},
        source_health={"failures": 2}, web={"slack_workspace_url": "https://newsradar-test.slack.com"},
    )
    with serving(settings, sweeps=2) as (daemon, address), chromium(width=1280, height=1600) as driver:
        # -- Stories ---------------------------------------------------------------------------------------
        driver.get(address)
        assert driver.title.startswith("기사")
        assert driver.find_element(By.ID, "broken-count").text == "고장 난 소스 1개"
        rows = driver.find_elements(By.CSS_SELECTOR, "li.story")
        headlines = [r.find_element(By.CSS_SELECTOR, "a.headline").text for r in rows]
        assert PRESS_COPIES[0].title in headlines  # the lead: the earliest copy
        assert not any(item.title in headlines for item in UNRELATED)  # caught stories only
        grouped = rows[headlines.index(PRESS_COPIES[0].title)]
        assert "3개 매체 보도" in grouped.text and "경북일보" in grouped.text
        assert {"이차전지", "특화단지", "포항"} <= {t.text for t in grouped.find_elements(By.CSS_SELECTOR, ".term")}
        when = grouped.find_element(By.CSS_SELECTOR, ".when")
        assert EXACT.fullmatch(when.get_attribute("title")), when.get_attribute("title")  # exact time on hover
        assert driver.execute_script("return document.documentElement.lang") == "ko"
        assert inert_problems(driver) == [] and resources_outside(driver, address) == []
        screenshot(driver, ARTIFACTS / "dashboard-stories.png")

        # search box over headlines, then the term and day filters
        box = driver.find_element(By.NAME, "q")
        box.send_keys("재활용 클러스터")
        then_new_page(driver, box.submit)
        found = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "li.story a.headline")]
        assert found == [PRESS_COPIES[0].title]
        driver.get(address)
        Select(driver.find_element(By.NAME, "term")).select_by_visible_text("이차전지")
        then_new_page(driver, driver.find_element(By.CSS_SELECTOR, "form.filters button").click)
        battery = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "li.story a.headline")]
        assert PRESS_COPIES[0].title in battery and DISTINCT[0].title not in battery  # 과메기 축제: 포항 only
        today = datetime.now(ZoneInfo(settings.timezone)).date().isoformat()
        driver.get(f"{address}?day={today}")
        assert len(driver.find_elements(By.CSS_SELECTOR, "li.story")) == len(rows)
        driver.get(f"{address}?day=2001-01-01")
        assert driver.find_elements(By.CSS_SELECTOR, "li.story") == []
        assert "조건에 맞는 기사가 없습니다" in driver.find_element(By.CSS_SELECTOR, "p.empty").text

        # -- A story -----------------------------------------------------------------------------------------
        driver.get(address)
        then_new_page(driver, driver.find_element(By.LINK_TEXT, PRESS_COPIES[0].title).click)
        assert driver.find_element(By.ID, "carried").text == "3개 매체 보도"
        copies = driver.find_elements(By.CSS_SELECTOR, "#copies tbody tr")
        assert [c.find_element(By.CSS_SELECTOR, ".outlet").text for c in copies] == ["경북일보", "대경일보", "경북매일"]
        links = [c.find_element(By.TAG_NAME, "a").get_attribute("href") for c in copies]
        assert links == [without_tracking(item.link) for item in PRESS_COPIES]  # shown without utm_ parameters
        marked = {m.text for m in driver.find_elements(By.CSS_SELECTOR, "#snippet mark")}
        assert {"포항", "이차전지", "특화단지"} <= marked, marked
        alert = driver.find_element(By.CSS_SELECTOR, "#alerts tbody tr")
        assert alert.find_element(By.TAG_NAME, "td").text == "#news" and "보냄" in alert.text
        permalink = alert.find_element(By.LINK_TEXT, "Slack에서 보기").get_attribute("href")
        posted = slack_server.messages("#news")
        ref = next(m for m in posted if PRESS_COPIES[0].title in m.text)
        assert permalink == f"https://newsradar-test.slack.com/archives/{ref.channel}/p{ref.ts.replace('.', '')}"
        assert inert_problems(driver) == []
        screenshot(driver, ARTIFACTS / "dashboard-story.png")

        # -- Sources -----------------------------------------------------------------------------------------
        then_new_page(driver, driver.find_element(By.LINK_TEXT, "소스").click)
        rows = {r.get_attribute("data-source"): r for r in driver.find_elements(By.CSS_SELECTOR, "tr.source")}
        assert list(rows) == ["regional-feed", "broken-feed", "retired-feed"]
        cells = {name: [td.text for td in row.find_elements(By.TAG_NAME, "td")] for name, row in rows.items()}
        assert cells["regional-feed"][1:3] == ["RSS", "정상"]
        assert cells["regional-feed"][5] == str(len(PRESS_COPIES + UNRELATED) + 4)  # items in the last 24 h
        assert cells["broken-feed"][2] == "실패" and cells["broken-feed"][6] == "2"
        assert "503" in cells["broken-feed"][7] and "부터" in cells["broken-feed"][7]
        assert cells["retired-feed"][2] == "사용 안 함"
        for name in ("regional-feed", "broken-feed"):
            last, upcoming = rows[name].find_elements(By.CSS_SELECTOR, "td.when")[:2]
            assert EXACT.fullmatch(last.get_attribute("title")) and last.text == "방금"
            assert EXACT.fullmatch(upcoming.get_attribute("title")) and upcoming.text.endswith("후")
        assert driver.find_element(By.ID, "broken-count").text == "고장 난 소스 1개"
        assert inert_problems(driver) == []
        screenshot(driver, ARTIFACTS / "dashboard-sources.png")

        response = httpx.get(f"{address}sources")
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
        assert "<script" not in response.text
        assert httpx.get(f"{address}story/no-such-story").status_code == 404


def test_the_dashboard_reads_the_store_and_cannot_write_it(tmp_path: Path, http_server: HttpServer) -> None:
    settings = web_settings(tmp_path, _sources(http_server)[:1])
    with serving(settings) as (daemon, _address):
        reader = Store.open_readonly(daemon.store.path)
        try:
            story = reader.recent_stories(limit=1)[0]
            assert reader.story_copies(story.id)
            with pytest.raises(StateError, match="write failed"):
                reader.save_story(story, story.lead.id, story.first_seen)
            with pytest.raises(StateError, match="write failed"):
                reader.prune_issue_17(timedelta(0), datetime.now(timezone.utc))
        finally:
            reader.close()
