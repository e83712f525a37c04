"""Fixture news for the end-to-end tests, written for newsradar: one press release in three outlets' versions,
unrelated items, a 포함-only item, and a dozen distinct Pohang stories for the restart test."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any
from xml.sax.saxutils import escape

KST = timezone(timedelta(hours=9))
# Six hours ago: fresh news, well inside the 48-hour alert age (slack.alert_max_age_hours).
BASE = datetime.now(KST).replace(second=0, microsecond=0) - timedelta(hours=6)


@dataclass(frozen=True)
class Item:
    guid: str
    outlet: str
    title: str
    body: str
    minutes: int  # after BASE

    @property
    def link(self) -> str:
        return f"https://{self.guid.split('-')[0]}.example.kr/news/{self.guid}?utm_source=rss"


PRESS_COPIES = [
    Item("gbilbo-501", "경북일보", "포항시, 영일만 이차전지 특화단지에 재활용 클러스터 착공",
         "[경북일보 김하늘 기자] 포항시는 23일 영일만 일반산업단지 이차전지 특화단지에서 사용후 배터리 재활용 "
         "클러스터 착공식을 열었다고 밝혔다. 사업비 3200억 원이 투입되는 클러스터는 2028년 완공된다. "
         "시는 연간 5만t의 폐배터리를 처리해 니켈과 리튬을 회수할 계획이다. ⓒ 경북일보 무단전재 및 재배포 금지", 0),
    Item("dkilbo-777", "대경일보", "\"폐배터리서 리튬 뽑는다\" 포항 재활용 클러스터 첫 삽",
         "포항시는 사용후 배터리 재활용 클러스터 착공식을 영일만 일반산업단지 이차전지 특화단지에서 23일 열었다. "
         "시는 연간 5만t의 폐배터리를 처리해 니켈과 리튬을 회수할 계획이다. 사업비 3200억 원이 투입되며 "
         "2028년 완공 예정이다. /박도윤 기자 dkilbo@example.kr", 95),
    Item("kbmaeil-3141", "경북매일", "포항 2차전지 재활용 클러스터 착공…2028년 완공",
         "포항시가 영일만 일반산업단지 이차전지 특화단지에 사용후 배터리 재활용 클러스터를 착공했다. "
         "사업비 3200억 원, 2028년 완공. 연간 5만t의 폐배터리에서 니켈과 리튬을 회수한다. "
         "Pohang broke ground on a battery recycling cluster on the 23rd.", 200),
]

UNRELATED = [
    Item("dkilbo-778", "대경일보", "대구 수성못 겨울 빛축제 다음달 개막",
         "대구 수성구는 다음 달 첫 주말부터 수성못 일대에서 겨울 빛축제를 연다고 밝혔다.", 30),
    Item("gbilbo-502", "경북일보", "안동 하회마을 관광객 1년 새 12% 증가",
         "안동시는 올해 하회마을을 찾은 관광객이 지난해보다 12% 늘었다고 밝혔다.", 60),
]

POHAM_ONLY = Item("gbilbo-503", "경북일보", "경북도 내년 예산 12조원…복지·교육 포함 전 분야 증액",
                  "경상북도는 복지와 교육을 포함한 전 분야 예산을 늘린 내년도 예산안을 도의회에 제출했다. "
                  "구미와 안동의 산업단지 기반시설 사업비도 포함됐다.", 45)

# Distinct stories for the restart test: different events, places, companies and figures.
DISTINCT = [
    Item(f"pnews-{i}", outlet, title, body, 10 * i)
    for i, (outlet, title, body) in enumerate([
        ("포항뉴스", "포항 구룡포 과메기 축제 관광객 8만명 돌파", "구룡포 과메기 축제에 사흘간 8만 명이 다녀갔다고 포항시가 밝혔다."),
        ("경북일보", "포스텍 연구팀, 전고체 전해질 신소재 개발", "포항공과대학교 화학공학과 연구팀이 황화물계 전고체 전해질 신소재를 개발했다."),
        ("대경일보", "포항 영일대 해수욕장 겨울 조명 점등", "포항 영일대 해수욕장에 겨울 경관 조명 1200개가 점등됐다."),
        ("경북매일", "포항시의회, 철강산업 위기 대응 특위 구성", "포항시의회가 철강산업 위기 대응 특별위원회를 구성하고 첫 회의를 열었다."),
        ("포항뉴스", "포항 흥해 지진 피해 주민 심리치유센터 개소", "흥해읍에 지진 피해 주민을 위한 심리치유센터가 문을 열었다."),
        ("경북일보", "에코프로, 포항 캠퍼스에 전구체 공장 증설 발표", "에코프로가 포항 캠퍼스에 연산 3만t 규모 전구체 공장을 증설한다."),
        ("대경일보", "포항~삼척 동해중부선 개통 1년 이용객 150만", "동해중부선 포항~삼척 구간 개통 1년 만에 이용객이 150만 명을 넘었다."),
        ("경북매일", "포항 죽도시장 온누리상품권 환급행사", "죽도시장에서 수산물 구매 시 온누리상품권을 환급하는 행사가 열린다."),
        ("포항뉴스", "포항스틸러스, 코리아컵 결승 진출", "포항스틸러스가 준결승에서 승부차기 끝에 이겨 코리아컵 결승에 올랐다."),
        ("경북일보", "포항 블루밸리 산단 수소연료전지 발전소 준공", "블루밸리 국가산업단지에 40MW급 수소연료전지 발전소가 준공됐다."),
        ("대경일보", "포항 호미곶 해맞이 축전 교통 통제 안내", "새해 첫날 호미곶 해맞이 축전을 앞두고 주변 도로가 통제된다."),
        ("경북매일", "포항 중앙상가 실개천 정비사업 마무리", "중앙상가 실개천 정비사업이 18개월 만에 마무리됐다."),
    ])
]


def rss(items: list[Item], title: str = "테스트 지역뉴스") -> bytes:
    """An RSS 2.0 feed; each item names its outlet in <source>, times in KST."""
    parts = [f'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>{escape(title)}</title>'
             "<link>https://example.kr/</link><description>fixture</description>"]
    for item in items:
        when = format_datetime(BASE + timedelta(minutes=item.minutes))
        parts.append(
            f"<item><title>{escape(item.title)}</title><link>{escape(item.link)}</link>"
            f'<guid isPermaLink="false">{item.guid}</guid>'
            f'<source url="https://{item.guid.split("-")[0]}.example.kr/rss">{escape(item.outlet)}</source>'
            f"<pubDate>{when}</pubDate><description>{escape(item.body)}</description></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def check_alerted_once(slack_server: Any, channel: str = "#news", note: object = "") -> None:
    """Every story of DISTINCT + PRESS_COPIES alerted exactly once in ``channel`` (nothing lost, nothing doubled),
    the press release once, showing its three outlets; ``note`` goes into the failure message."""
    messages = slack_server.messages(channel)
    story_ids = [m.metadata["event_payload"]["story_id"] for m in messages if m.metadata]
    assert len(story_ids) == len(messages) == len(DISTINCT) + 1, (note, [m.text[:60] for m in messages])
    assert len(set(story_ids)) == len(story_ids)  # no story alerted twice
    assert len(slack_server.posts) == len(messages)  # and no extra post anywhere
    press = [m for m in messages if "재활용 클러스터" in m.text]
    assert len(press) == 1 and all(copy.outlet in press[0].text + str(press[0].blocks) for copy in PRESS_COPIES)
