"""The HTML digest as a reader sees it: rendered by a real headless Chromium, the trend chart shown with its
Korean labels. The screenshot is kept as a test artifact (``$NEWSRADAR_ARTIFACTS``, default var/test-artifacts/)
and is the picture in README (docs/digest-example.png is a copy of it)."""

from __future__ import annotations

import io
import os
import warnings
from datetime import timedelta
from pathlib import Path

from matplotlib import font_manager
from matplotlib.ft2font import FT2Font
from PIL import Image, ImageChops, ImageStat

from newsradar.store import Store
from notifiers import chart as charts
from tests.notifiers.stories import OUTLETS, make_story
from tests.notifiers.test_digest import MORNING, mailer, two_weeks_of_news
from tests.servers.browser import chromium, screenshot

ARTIFACTS = Path(os.environ.get("NEWSRADAR_ARTIFACTS", Path(__file__).resolve().parents[2] / "var" / "test-artifacts"))
# Every label the chart draws besides the term names (notifiers/chart.py).
LABELS = ("최근 14일 키워드별 기사 추이", "스토리 수", "보도 매체 수", "날짜 (현지 시각)")


HEADLINES = (  # written for this test (not from the corpus): what a morning digest might hold
    ("b-invest", "포항 이차전지 특화단지에 2조 원 규모 양극재 공장 착공", ("이차전지",), OUTLETS),
    ("b-export", "이차전지 수출 석 달 만에 반등…유럽 수요 회복", ("이차전지",), OUTLETS[:3]),
    ("p-port", "포항 영일만항 배터리 물류 전용 부두 연내 개장", ("포항", "이차전지"), OUTLETS[:2]),
    ("c-cibf", "CIBF 2026 개막, 국내 소재 기업 40여 곳 참가", ("CIBF",), OUTLETS[1:3]),
)


def morning_news(store: Store) -> None:
    """The digest in the picture: two weeks of news for the chart, this morning's headlines, and one story
    first published months ago (listed under 이전 기사, never alerted)."""
    two_weeks_of_news(store)
    for sid, title, terms, outlets in HEADLINES:
        when = MORNING - timedelta(hours=2)
        store.save_story(make_story(sid, title=title, terms=terms, outlets=outlets, url=f"https://news.example.kr/{sid}",
                                    snippet=f"{title}. (기사 요약)", published=when), f"{sid}-a", when)  # fmt: skip
    old = MORNING - timedelta(days=150)
    store.save_story(make_story("old", title="포항시, 이차전지 특화단지 지정 신청서 제출", url="https://news.example.kr/old",
                                published=old), "old-a", MORNING - timedelta(hours=1))  # fmt: skip


def test_the_rendered_html_digest_shows_the_chart_with_korean_labels(tmp_path: Path, store: Store) -> None:
    morning_news(store)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)" for tofu
        digest = mailer(tmp_path, store, None).preview(MORNING, tmp_path / "digest.html")
    assert digest.chart_png is not None

    # The chart is drawn in a Noto CJK font that has a glyph for every character of every label.
    family = charts.korean_font()
    assert family is not None and family.startswith("Noto Sans CJK")
    font = FT2Font(font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False))
    text = "".join(LABELS) + "".join(digest.trend_text[1:])
    assert all(font.get_char_index(ord(ch)) for ch in text if "\uac00" <= ch <= "\ud7a3")

    with chromium(1000, 1500) as driver:
        driver.get((tmp_path / "digest.html").as_uri())
        box = driver.execute_script(
            "const img = document.querySelector('img');"
            "const r = img.getBoundingClientRect();"
            "return {complete: img.complete, natural: img.naturalWidth, x: r.x, y: r.y, w: r.width, h: r.height,"
            " alt: img.alt, title: document.querySelector('h1').innerText};"
        )
        shot = screenshot(driver, ARTIFACTS / "digest-screenshot.png")
    assert box["complete"] and box["natural"] == 880  # the chart loaded, at its full resolution
    assert box["title"].startswith("newsradar 뉴스 다이제스트 — 2026-06-15") and "최근 14일 추이" in box["alt"]
    assert box["y"] + box["h"] <= 1500 and box["w"] >= 600  # shown whole, in the first screen

    # What Chromium shows where the chart is, is the chart: compare the screenshot's region with the PNG.
    page = Image.open(shot).convert("RGB")
    region = page.crop((round(box["x"]), round(box["y"]), round(box["x"] + box["w"]), round(box["y"] + box["h"])))
    drawn = Image.open(io.BytesIO(digest.chart_png)).convert("RGB").resize(region.size, Image.Resampling.LANCZOS)
    difference = ImageStat.Stat(ImageChops.difference(region, drawn)).mean
    assert max(difference) < 6.0, difference  # per channel, out of 255: the same picture
    assert max(ImageStat.Stat(region).stddev) > 20  # and not a blank box
    assert shot.stat().st_size > 30_000
    listed = [g.term for g in digest.groups], [s.id for s in digest.earlier]
    assert listed == (["이차전지", "CIBF", "포항"], ["old"])  # watchlist order; the old story apart
