"""Our own fixture news for the reliability suite (written for these tests, not taken from the corpus).

Every relevant story is a distinct event (place, company, figures), so that the story grouper keeps them
apart and each one must reach Slack exactly once. Feeds are built by hand so a test can leave out a link,
a date or a guid, repeat a guid, or put hostile text anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from xml.sax.saxutils import escape

from newsradar.events import stable_id

KST = timezone(timedelta(hours=9))
BASE = datetime.now(KST).replace(microsecond=0) - timedelta(hours=6)
XML = {"Content-Type": "application/rss+xml; charset=utf-8"}
HTML = {"Content-Type": "text/html; charset=utf-8"}

_OMIT = object()


@dataclass(frozen=True)
class Entry:
    """One feed item. ``key`` is a plain Korean phrase of the title that identifies its alert in Slack."""

    key: str
    title: str
    body: str
    outlet: str = "경북신문"
    slug: str = ""
    minutes: int = 0  # after BASE
    guid: str | None = None
    link: object = field(default=None)  # None: derived from slug; _OMIT: no <link>; str: as given
    date: object = field(default=None)  # None: BASE + minutes; _OMIT: no <pubDate>; str: as given

    def __post_init__(self) -> None:
        assert self.key in self.title, f"key {self.key!r} must be part of the title {self.title!r}"

    @property
    def url(self) -> str:
        return f"https://news.example.kr/article/{self.slug or stable_id(self.key)}"


def no_link(entry: Entry) -> Entry:
    return Entry(**{**entry.__dict__, "link": _OMIT, "guid": None})


def no_date(entry: Entry) -> Entry:
    return Entry(**{**entry.__dict__, "date": _OMIT})


def dated(entry: Entry, when: datetime) -> Entry:
    return Entry(**{**entry.__dict__, "date": format_datetime(when)})


def with_guid(entry: Entry, guid: str) -> Entry:
    return Entry(**{**entry.__dict__, "guid": guid})


def rss(entries: list[Entry], title: str = "경북 지역뉴스", *, encoding: str = "utf-8") -> str:
    """An RSS 2.0 feed as text; ``encoding`` is only what its XML declaration says (encode it as the test needs)."""
    parts = [f'<?xml version="1.0" encoding="{encoding}"?>\n<rss version="2.0"><channel>'
             f"<title>{escape(title)}</title><link>https://news.example.kr/</link><description>fixture</description>"]
    for e in entries:
        item = [f"<title>{escape(e.title)}</title>"]
        if e.link is not _OMIT:
            item.append(f"<link>{escape(str(e.link or e.url))}</link>")
        if e.guid is not None:
            item.append(f'<guid isPermaLink="false">{escape(e.guid)}</guid>')
        item.append(f'<source url="https://news.example.kr/rss">{escape(e.outlet)}</source>')
        if e.date is not _OMIT:
            item.append(f"<pubDate>{escape(str(e.date or format_datetime(BASE + timedelta(minutes=e.minutes))))}</pubDate>")
        item.append(f"<description>{escape(e.body)}</description>")
        parts.append("<item>" + "".join(item) + "</item>")
    parts.append("</channel></rss>")
    return "".join(parts)


# -- the healthy source's story: must reach Slack exactly once whatever the hostile source does -----------------
HEALTHY = Entry(
    "용수 공급 협약",
    "포항시, 영일만 이차전지 특화단지 용수 공급 협약 체결",
    "포항시는 한국수자원공사와 영일만 일반산업단지 이차전지 특화단지에 하루 3만t의 공업용수를 공급하는 협약을 "
    "맺었다고 밝혔다. 관로 공사는 내년 3월 착공해 2028년 끝난다.",
    outlet="경북신문", slug="healthy-1", minutes=10,
)

# -- distinct relevant stories a hostile source also carries (they must still flow) ---------------------------
RELEVANT = [
    Entry("양극재 공장 증설", "포항 블루밸리 산단에 양극재 공장 증설…이차전지 소재 연 5만t",
          "한 소재기업이 포항 블루밸리 국가산업단지에 이차전지 양극재 공장을 증설한다. 투자액은 1조2천억 원이다.",
          outlet="대경일보", slug="rel-1", minutes=20),
    Entry("CIBF) 공동관 참가", "경북 기업 12곳, 중국국제배터리박람회(CIBF) 공동관 참가",
          "경상북도는 도내 배터리 기업 12곳이 선전에서 열리는 CIBF에 공동관을 꾸려 참가한다고 밝혔다.",
          outlet="경북매일", slug="rel-2", minutes=30),
    Entry("폐배터리 재사용 실증센터", "포항에 폐배터리 재사용 실증센터 문 연다",
          "사용후 배터리를 에너지저장장치로 재사용하는 실증센터가 포항 흥해읍에 들어선다. 국비 240억 원이 들었다.",
          outlet="포항뉴스", slug="rel-3", minutes=40),
    Entry("전고체 연구단지", "포스텍, 2차전지 전고체 연구단지 착공",
          "포항공과대학교가 2차전지 전고체 배터리 공동연구단지를 착공했다. 연구단지는 2027년 문을 연다.",
          outlet="경북일보", slug="rel-4", minutes=50),
]


def article_page(title: str, paragraphs: list[str], *, extra_head: str = "", extra_body: str = "") -> str:
    """A plain article page with a body container, so extraction has nothing to guess."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!DOCTYPE html><html lang='ko'><head><meta charset='utf-8'><title>{title}</title>{extra_head}</head>"
        f"<body><header><nav><a href='/'>홈</a> <a href='/news'>뉴스</a></nav></header>"
        f"<h1>{title}</h1><div id='articleBody'>{body}</div>{extra_body}"
        f"<footer>ⓒ 경북신문 무단전재 및 재배포 금지</footer></body></html>"
    )


def list_page(links: list[tuple[str, str]]) -> str:
    """An HTML list page; each link is (href, text), picked by the selector ``ul.news a``."""
    items = "".join(f"<li><a href='{href}'>{text}</a></li>" for href, text in links)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>뉴스</title></head><body>"
            f"<ul class='news'>{items}</ul></body></html>")
