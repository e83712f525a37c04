"""No flood of old news: a new source whose feed still carries last month alerts only what is fresh; the old
stories are still collected, grouped and listed in the digest's "earlier" section (never in Slack)."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import yaml

from newsradar.store import Store
from tests.e2e.feeds import KST
from tests.e2e.processes import newsradar
from tests.servers.slack import TOKEN

PLACES = ["북구", "남구", "흥해읍", "구룡포읍", "오천읍", "연일읍", "장기면", "청하면", "기계면", "죽장면"]
TOPICS = ["도서관 리모델링 착공", "전통시장 주차장 확충", "어린이집 급식 위생 점검", "해안 산책로 정비 완료",
          "농산물 직판장 개장", "노인복지관 프로그램 개편", "하수관로 교체 공사", "마을버스 노선 조정",
          "청년 창업 공간 개소", "가로등 LED 교체"]
OUTLETS = ["포항뉴스", "경북일보", "대경일보", "경북매일"]


def _item(guid: str, title: str, body: str, outlet: str, when: datetime | None) -> str:
    date = f"<pubDate>{format_datetime(when)}</pubDate>" if when else ""
    return (f"<item><title>{escape(title)}</title><link>https://pnews.example.kr/{guid}</link>"
            f'<guid isPermaLink="false">{guid}</guid><source url="https://x.example.kr/rss">{escape(outlet)}</source>'
            f"{date}<description>{escape(body)}</description></item>")


def feed(items: list[str]) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>포항 지역뉴스</title>'
            "<link>https://pnews.example.kr/</link><description>t</description>" + "".join(items)
            + "</channel></rss>").encode("utf-8")


def last_month(now: datetime) -> list[tuple[str, str, str, str, datetime]]:
    """100 distinct Pohang items published 25-35 days ago."""
    out = []
    for i in range(100):
        place, topic = PLACES[i % 10], TOPICS[(i // 10 + i) % 10]
        title = f"포항 {place} {topic}…사업비 {17 + i * 3}억원"
        body = (f"포항시 {place}은 {topic} 사업에 {17 + i * 3}억원을 들인다고 밝혔다. "
                f"주민 설명회는 {i % 28 + 1}일 {place} 행정복지센터에서 열린다. 문의 {1000 + i}번.")
        out.append((f"old-{i:03d}", title, body, OUTLETS[i % 4], now - timedelta(days=25 + i % 11, hours=i % 7)))
    return out


TODAY = [
    ("new-1", "포항 영일만 이차전지 특화단지 입주 기업 3곳 추가", "포항시는 영일만 산단 이차전지 특화단지에 기업 세 곳이 "
     "추가로 입주한다고 밝혔다.", "경북일보", 3),
    ("new-2", "포스텍, 포항 캠퍼스에 배터리 안전 연구동 준공", "포스텍이 포항 캠퍼스에 배터리 안전 연구동을 준공했다.",
     "대경일보", 2),
    ("new-3", "포항 죽도시장 상인회, 겨울 할인 행사 시작", "포항 죽도시장 상인회가 겨울맞이 할인 행사를 시작했다.",
     "포항뉴스", 1),
]
UNDATED = [("undated-1", "포항 북구 주민센터 민원 안내 (날짜 없음)", "포항 북구 주민센터가 민원 처리 시간을 안내했다.",
            "포항뉴스", None)]


def test_a_new_feed_of_last_month_alerts_only_todays_news(tmp_path: Path, http_server, slack_server, smtp_server):
    now = datetime.now(KST)
    old = last_month(now)
    items = [_item(g, t, b, o, w) for g, t, b, o, w in old]
    items += [_item(g, t, b, o, now - timedelta(hours=h)) for g, t, b, o, h in TODAY]
    items += [_item(g, t, b, o, w) for g, t, b, o, w in UNDATED]  # a new source's undated backlog
    http_server.add("/feed.xml", feed(items), headers={"Content-Type": "application/rss+xml; charset=utf-8"})
    state = tmp_path / "state"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "state_dir": str(state), "http": {"per_host_delay": 0},
        "sources": [{"name": "pohang", "url": http_server.url("/feed.xml"), "interval": 3600}],
        "slack": {"base_url": slack_server.base_url, "default_channel": "#news", "min_interval": 0},
        "smtp": {"host": smtp_server.host, "port": smtp_server.port, "security": "none", "timeout": 10},
        "digest": {"time": "00:00", "recipients": ["desk@example.kr"]},
    }, allow_unicode=True), encoding="utf-8")
    env = {"SLACK_BOT_TOKEN": TOKEN}

    run = newsradar("--config", str(config), "run", "--once", env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    posted = [c.params.get("text", "") for c in slack_server.posts]
    assert len(posted) == 3, posted  # exactly the three of today
    assert sorted(t for _, t, *_ in TODAY) == sorted(next(t for _, t, *_ in TODAY if t in p) for p in posted)
    store = Store(state / "state.db")
    try:
        stories = store.relevant_stories(None, datetime.now(KST) + timedelta(minutes=1))
    finally:
        store.close()
    old_titles = {t for _, t, *_ in old}
    old_stories = [s for s in stories if s.lead.title in old_titles]
    assert sum(s.copies for s in old_stories) == 100  # every old item collected and grouped
    held = len(old_stories) + len(UNDATED)
    assert f"alerts held back as old (earliest copy over 48 h ago, or a new source's backlog): {held} stories" \
        in run.stdout, run.stdout

    sent = newsradar("--config", str(config), "digest", "--send", env=env)
    assert sent.returncode == 0, sent.stderr[-3000:]
    text = smtp_server.messages[0].message.get_body(("plain",)).get_content()
    fresh, earlier = text.split("■ 이전 기사", 1)
    assert all(t in fresh and t not in earlier for _, t, *_ in TODAY)
    assert all(s.lead.title in earlier and s.lead.title not in fresh for s in old_stories)

    # A later poll: the feed re-surfaces a month-old article under a new guid, and carries one new item.
    g, t, b, o, w = old[0]
    items += [_item("old-again", t + " (재송고)", b, o, w),
              _item("new-4", "포항시, 2차전지 재활용 기업 유치 협약", "포항시가 이차전지 재활용 기업과 투자 협약을 맺었다.",
                    "경북매일", now)]
    http_server.add("/feed.xml", feed(items), headers={"Content-Type": "application/rss+xml; charset=utf-8"})
    again = newsradar("--config", str(config), "run", "--once", env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    posted = [c.params.get("text", "") for c in slack_server.posts]
    assert len(posted) == 4 and "재활용 기업 유치" in posted[-1], posted
    assert "alerts held back as old" in again.stdout and "(재송고)" not in str(posted)
