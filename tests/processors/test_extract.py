"""Main-text extraction on our own Korean news pages, the real nate portal page and the seed captures."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import pytest
from selectolax.lexbor import LexborHTMLParser

from collectors.charset import decode_bytes
from newsradar.events import Article, RawItem
from processors.extract import clean_lines, extract, korean_page_time

FIXTURES = Path(__file__).resolve().parent / "fixtures_extract"
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
SEOUL = ZoneInfo("Asia/Seoul")
FETCHED = datetime(2025, 6, 1, 9, 0, tzinfo=SEOUL)


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found: the shared corpus lives beside the repository (/work/shared)")
    return path


def page_item(
    html: str,
    *,
    title: str = "링크 제목",
    outlet: str = "",
    body: str = "",
    published: datetime | None = None,
) -> RawItem:
    return RawItem(
        id="item-1",
        source="test-source",
        outlet=outlet,
        url="https://news.example.kr/articleView.html?idxno=1",
        canonical_url="https://news.example.kr/articleView.html?idxno=1",
        title=title,
        body=body,
        html=html,
        published_at=published,
        fetched_at=FETCHED,
    )


def fixture_page(name: str) -> str:
    data = (FIXTURES / name).read_bytes()
    # Decoded as the collectors hand pages over.
    return decode_bytes(data, http_charset=None, kind="html", where=name).text


class Case(NamedTuple):
    """What a fixture page must give: its title and time, story sentences kept, furniture strings dropped."""

    title: str
    published: datetime
    body: tuple[str, ...]
    furniture: tuple[str, ...]


# fmt: off
CASES = {
    "regional_cms_weather.html": Case(
        "포항시, 이차전지 특화단지 2단계 기반시설 착공", datetime(2024, 12, 3, 13, 57, tzinfo=SEOUL),
        ("포항시가 이차전지 특화단지의 2단계 기반시설 공사에 들어갔다.", "154kV 변전소를 새로 놓는 것이 핵심이다",
         "행정 지원을 아끼지 않겠다”고 말했다.", "CIBF 박람회에도 지역 기업과 함께 참가해"),
        ("흐림포항8.1℃", "맑음서울", "℃", "정치", "관련기사", "벚꽃마라톤", "황리단길", "나눔 장터",
         "많이 본 뉴스", "울릉도 여객선", "최신뉴스", "구미 청년창업센터", "무단전재", "doyun.kim@",
         "김도윤 기자", "기사입력", "[광고]", "난방비", "페이스북", "카카오스토리", "등록번호", "All rights reserved"),
    ),
    "generic_glued.html": Case(
        "CIBF 2025 폐막…K-배터리 소재 기업 수출 상담 1억달러", datetime(2025, 5, 18, 9, 30, tzinfo=SEOUL),
        ("CIBF 2025(China International Battery Fair)가 나흘 일정을 마치고 17일 폐막했다.",
         "포항과 청주의 이차전지 특화단지 입주 기업들이", "중국 밖 조달처를 찾는 수요가 더 늘어날 것으로 보고 있다."),
        ("[인사]", "본부장 승진", "한국산업기술진흥원", "관련기사", "전고체 배터리 시제품", "인기기사",
         "나트륨이온", "seoyeon.lee@", "이서연 기자", "공유하기", "URL 복사", "무단전재", "검색어", "대표전화"),
    ),
    "two_articles.html": Case(
        "경북도, 배터리 규제자유특구 실증 4년 성과 공개", datetime(2024, 10, 20, 0, 0, tzinfo=SEOUL),
        ("차세대 배터리 리사이클링 규제자유특구의 4년간 실증 성과를 20일 공개했다.",
         "이차전지 양극재 특화단지와 연계한 재활용 클러스터", "시간이 크게 줄었다”고 설명했다."),
        ("청도", "감 수확", "(끝)", "무단 전재", "포토뉴스", "단풍 절정", "로그인", "최종편집", "jmh@",
         "정민호 기자", "트위터", "밴드"),
    ),
    "portal_euckr.html": Case(
        '"특화단지 전력망 먼저"…포항·울산 기업들 한목소리', datetime(2025, 5, 16, 14, 10, tzinfo=SEOUL),
        ("이차전지 특화단지에 입주한 기업들이 공장 증설보다 전력망 확충이 먼저라고 입을 모았다.",
         "양극재·분리막 기업 관계자 20여 명이 참석했다.", "특화단지 전용 변전소 건설 일정을 하반기 중 확정하겠다"),
        ("이 시각 많이 본 기사", "프로야구", "황사 대비", "반려동물", "앱 지금 바로", "저작권자", "무단 전재",
         "주요뉴스", "해상풍력", "전세가격", "ohjh@", "흐림포항", "IT/과학", "본문 바로가기", "HANBIT NEWS"),
    ),
    "table_layout.html": Case(
        "포항 철강기업, 이차전지 소재 전환 속도…설비투자 2천억원", datetime(2025, 5, 16, 14, 10, 20, tzinfo=SEOUL),
        ("포항의 중견 철강기업들이 이차전지 소재 사업으로 무게중심을 옮기고 있다.",
         "시험 생산 부지를 우선 배정하기로 했다.", "내년 상반기 시제품 출하가 목표”라고 말했다."),
        ("구름많음포항15.2℃", "흐림경주", "최신뉴스", "영일대 해수욕장", "분수쇼", "죽도시장", "무단전재",
         "발행인", "지역 | 경제", "기사승인", "최선경 기자"),
    ),
    "cityhall_board_meta.html": Case(
        "영일만 수소충전소 개소…시내버스 30대 충전 가능", datetime(2025, 3, 14, 9, 30, tzinfo=SEOUL),
        ("하루 시내버스 30대를 충전할 수 있는 수소충전소를 열었다고 14일 밝혔다.",
         "충전소 개소 영상의 조회수는 공개 사흘 만에 2만 회를 넘었다.",
         "충전 예약 게시판의 글은 작성자 본인 확인을 거친 뒤에만 공개된다고 시는 설명했다."),
        ("등록일", "수정일", "조회 152", "작성일", "조회수 :", "1,024", "기후에너지과", "입력 2025.03.14", "오전 9:30",
         "본문 바로가기", "이전글", "산불 예방", "첨부파일", "All rights reserved"),
    ),
}
# fmt: on


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_pages_keep_the_story_and_drop_the_furniture(name: str) -> None:
    case = CASES[name]
    # As the collectors deliver them: link text or feed title, and the outlet from config or og:site_name.
    outlet = "뉴스포항24" if name == "table_layout.html" else ""
    article = extract(page_item(fixture_page(name), title=case.title, outlet=outlet))
    assert article.title == case.title
    assert article.published_at == case.published
    missing = [s for s in case.body if s not in article.text]
    leaked = [s for s in case.furniture if s in article.text]
    assert (missing, leaked) == ([], []), name


def test_article_keeps_the_item_identity_and_has_no_matches_yet() -> None:
    raw = page_item(fixture_page("regional_cms_weather.html"))
    article = extract(raw)
    assert (article.id, article.source, article.url, article.fetched_at) == (
        raw.id,
        raw.source,
        raw.url,
        FETCHED,
    )
    assert article.matches == () and article.text.count("\n") >= 3  # paragraphs stay separate lines


def test_title_suffix_is_trimmed_only_for_a_known_outlet() -> None:
    page = "<html><head><title>포항 이차전지 기사 - 모르는신문</title></head><body><p>본문</p></body></html>"
    assert extract(page_item(page)).title == "포항 이차전지 기사 - 모르는신문"
    assert extract(page_item(page, outlet="모르는 신문")).title == "포항 이차전지 기사"


def test_content_selector_is_used_first() -> None:
    filler = "<p>" + "지역 행사 안내와 공지 사항이 길게 이어지는 문단입니다. " * 12 + "</p>"
    page = (
        f"<html><body><div class='notice-board'>{filler}</div>"
        "<div class='story-text'><p>포항시가 이차전지 특화단지 기업 설명회를 열었다. 참석 기업은 40곳으로 지난해보다 "
        "열 곳 늘었고, 시는 연말까지 투자 협약을 마무리할 계획이다.</p></div></body></html>"
    )
    article = extract(page_item(page), content_selector="div.story-text")
    assert article.text.startswith("포항시가 이차전지 특화단지 기업 설명회를 열었다.")
    assert "공지 사항" not in article.text


def test_invalid_content_selector_is_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="processors.extract"):
        article = extract(page_item(fixture_page("regional_cms_weather.html")), content_selector="div[[[")
    assert "154kV 변전소" in article.text
    assert any("div[[[" in r.getMessage() for r in caplog.records)


def test_page_without_text_falls_back_to_the_feed_summary(caplog: pytest.LogCaptureFixture) -> None:
    raw = page_item(
        "<html><body><nav><a href='/'>홈</a></nav></body></html>", body="<p>요약: 포항 <b>이차전지</b></p>"
    )
    with caplog.at_level(logging.WARNING, logger="processors.extract"):
        article = extract(raw)
    assert article.text == "요약: 포항 이차전지"
    assert any("test-source" in r.getMessage() and "no main text" in r.getMessage() for r in caplog.records)


def test_feed_item_without_a_page_is_cleaned_of_markup_and_entities() -> None:
    published = datetime(2025, 9, 10, 2, 22, tzinfo=UTC)
    raw = RawItem(
        id="n1",
        source="naver-api",
        outlet="테스트신문",
        url="https://n.example/1",
        canonical_url="https://n.example/1",
        title="포항 &quot;<b>이차전지</b> 특화단지&quot; 투자 1조 돌파",
        body="포항시는 &quot;<b>이차전지</b>   특화단지에&quot; 올해 &amp; 내년 투자를... ",
        published_at=published,
    )
    article = extract(raw)
    assert article.title == '포항 "이차전지 특화단지" 투자 1조 돌파'
    assert article.text == '포항시는 "이차전지 특화단지에" 올해 & 내년 투자를...'
    assert article.published_at == published


def test_real_naver_api_items_are_cleaned() -> None:
    folder = shared_path("corpus", "naver-api-raw")
    items = [
        i for f in sorted(folder.glob("news_clean_*.json")) for i in json.loads(f.read_text(encoding="utf-8"))
    ]
    assert len(items) >= 50
    for n, item in enumerate(items):
        raw = RawItem(
            id=str(n),
            source="naver",
            outlet="",
            url=item["link"],
            canonical_url=item["link"],
            title=item["title"],
            body=item["description"],
        )
        article = extract(raw)
        for text in (article.title, article.text):
            assert not re.search(r"</?b>|&quot;|&amp;|&lt;|&gt;|&#\d+;", text), text
        assert article.title and article.text


def test_page_metadata_lines_are_dropped_and_sentences_naming_them_are_kept() -> None:
    """등록일/작성일/조회수/작성자 lines are board and CMS furniture; the story may still talk about them."""
    story = "시는 수소충전소를 열고 시내버스 30대를 하루에 충전할 수 있게 됐다고 밝혔다. 충전소는 1년 동안 지었다."
    furniture = [
        "등록일 2026-11-20 15:00",
        "작성자 : 기후에너지과",
        "작성일 : 2025.03.14",
        "조회수 : 1,024",
        "• 조회 152",
        "작성자 홍보담당관 | 작성일 2025.03.14 | 조회수 1,024회",
        "작성일시 2024-05-06 14:10:20 조회 3",
        "등록일 2024년 5월 6일 (월)",
        "입력 2024.05.06. 오후 3:20",
        "글쓴이 김하늘 | Hits: 1,234",
    ]
    sentences = [
        "개소 영상의 조회수는 공개 사흘 만에 2만 회를 넘었다.",
        "작성자 김모 씨는 경찰 조사에서 혐의를 인정했다.",
        "등록일 기준으로 보면 신청자가 2024년보다 늘었다",
        "조회 결과 3명이 더 확인됐다",
    ]
    kept = clean_lines("\n".join([story, *furniture, *sentences])).splitlines()
    assert kept == [story, *sentences]


def test_korean_publication_patterns() -> None:
    assert korean_page_time("박영재 기자 | 기사입력 2024/12/03 [13:57]") == datetime(
        2024, 12, 3, 13, 57, tzinfo=SEOUL
    )
    assert korean_page_time("이재영 기자 / youngl@x.kr입력 : 2023년 01월 09일") == datetime(
        2023, 1, 9, tzinfo=SEOUL
    )
    assert korean_page_time("기사승인 : 2025-05-16 14:10:20") == datetime(
        2025, 5, 16, 14, 10, 20, tzinfo=SEOUL
    )
    assert korean_page_time("입력 2024.05.06. 오후 3:20") == datetime(2024, 5, 6, 15, 20, tzinfo=SEOUL)
    assert korean_page_time("입력 2024.05.06. 오전 12:05") == datetime(2024, 5, 6, 0, 5, tzinfo=SEOUL)
    assert korean_page_time("등록 2024-02-30") is None and korean_page_time("최종편집:2024-04-26") is None


def test_meta_time_beats_page_text_and_raw_time_is_the_last_resort() -> None:
    page = (
        "<html><head><meta property='article:published_time' content='2025-05-18T09:30:00'></head>"
        "<body><p>기사입력 2020/01/01 [10:00]</p></body></html>"
    )
    assert extract(page_item(page)).published_at == datetime(
        2025, 5, 18, 9, 30, tzinfo=SEOUL
    )  # naive → Seoul
    fallback = datetime(2025, 1, 2, 3, 4, tzinfo=UTC)
    assert (
        extract(page_item("<html><body><p>날짜 없음</p></body></html>", published=fallback)).published_at
        == fallback
    )


# -- the real nate portal page (EUC-KR, 353 links of furniture) ------------------------------------------
NATE_BODY = [
    '문재인 대통령은 7일 "혁신 창업이 활발해져야 한다"며',
    "유니콘 기업(기업 가치 1조원 이상 벤처기업), 대기업으로 성장할 수 있어야 한다",
    "벤처투자액도 3조4천억원으로, 전년보다 44% 늘어 사상 최고치를 기록했고",
    "이해진 네이버 글로벌투자책임자, 김택진 엔씨소프트 대표, 서정선 마크로젠 회장",
    '"설 연휴를 마치고 바쁠 텐데 함께 해줘 감사하다"고 인사했다.',
]
NATE_FURNITURE = [
    "이 시각 많이 본 기사",
    "기저귀에 구더기",
    "박성현, 타이거 우즈와 광고 촬영",
    "연합뉴스 앱 지금 바로 다운받기",
    "무단 전재-재배포 금지",
    "실시간 급상승 관심뉴스",
    "랭킹 TOP 100 전체보기",
    "지구촌 화제 더보기",
    "SKCommunications",
    "페이스북 공유하기",
    "글씨 확대",
    "본문 바로가기",
    "실시간 검색어",
    "라디오 이슈 토론",
]


def nate_article() -> tuple[str, Article]:
    path = shared_path("corpus", "portal-page-euckr", "nate_20190207n26652.main.html")
    decoded = decode_bytes(path.read_bytes(), http_charset=None, kind="html", where=path.name)
    assert decoded.encoding == "cp949" and decoded.replaced == 0
    raw = page_item(decoded.text, title="링크 제목", outlet="연합뉴스")
    return decoded.text, extract(raw)


def test_real_nate_page_body_is_kept() -> None:
    _, article = nate_article()
    assert article.title == '문대통령 "혁신창업 기업, 대기업으로 성장할 수 있어야"'
    assert article.published_at == datetime(2019, 2, 7, 16, 9, tzinfo=SEOUL)
    for sentence in NATE_BODY:
        assert sentence in article.text, sentence


def test_real_nate_page_furniture_is_dropped() -> None:
    page, article = nate_article()
    text: str = article.text
    assert [s for s in NATE_FURNITURE if s in text] == []
    links = [" ".join(a.text().split()) for a in LexborHTMLParser(page).css("a")]
    furniture = [t for t in links if len(t) >= 8]
    leaked = [t for t in furniture if t in text]
    assert len(links) >= 350 and len(furniture) >= 200
    assert len(leaked) <= len(furniture) // 50, leaked  # at most 2% of the link texts survive


# -- the seed captures (text of real pages) through the line filter --------------------------------------
def test_seed_weather_widget_lines_are_dropped() -> None:
    text = shared_path("seeds", "001_838b305d13b0c734.txt").read_text(encoding="utf-8")
    cleaned = clean_lines(text)
    assert "℃" not in cleaned and "흐림포항25.1" not in cleaned
    assert "상하이 국제 배터리산업 박람회는 참관객이 3만 5,000명에 달하는" in cleaned
    assert "모바일 버전으로 보기" not in cleaned


def test_seed_latest_news_glued_below_the_copyright_is_cut() -> None:
    text = shared_path("seeds", "000_6b3b8af5b73afdb4.txt").read_text(encoding="utf-8")
    cleaned = clean_lines(text)
    assert "‘CIBF 2025(China International Battery Fair)’에 참가해" in cleaned
    assert "글로벌 연계를 적극 추진해 나가겠다”고 밝혔다." in cleaned
    for furniture in (
        "최신뉴스",
        "화성특례시",
        "구리시",
        "PHOTO NEWS",
        "많이 본 기사",
        "무단전재",
        "기사승인",
        "인쇄",
    ):
        assert furniture not in cleaned, furniture


def test_seed_bylines_menus_and_copyright_are_dropped() -> None:
    text = shared_path("seeds", "003_4a6261bce5c9d856.txt").read_text(encoding="utf-8")
    cleaned = clean_lines(text)
    assert "세계 최대 정보기술 박람회인 ‘국제전자제품박람회’(이하 CES 2023)를 찾아" in cleaned
    for furniture in ("최종편집", "youngl5566", "Copyrights", "뉴스 > 경제 일반", "트위터페이스북"):
        assert furniture not in cleaned, furniture


# -- real publication times from pages we write (issue 19): each page's only date is in one place ------------
_ARTICLE_BODY = ("<p>포항시는 18일 이차전지 특화단지에 입주할 기업 세 곳과 투자협약을 맺었다고 밝혔다. 협약에 따라 "
                 "기업들은 2028년까지 공장을 짓고 인력 500명을 새로 뽑는다.</p><p>시 관계자는 특화단지 지정 이후 "
                 "투자 문의가 크게 늘었다며 기반시설 공사를 서두르겠다고 말했다.</p>")


def _dated_page(head: str = "", byline: str = "") -> str:
    return (f"<html><head><title>포항 이차전지 특화단지 투자협약 - 경북일보</title>{head}</head><body>"
            f"<header><nav><a href='/'>홈</a></nav></header><article><h1>포항 이차전지 특화단지 투자협약</h1>"
            f"<div class='byline'>{byline}</div>{_ARTICLE_BODY}</article><footer>경북일보 © 2026</footer></body></html>")


@pytest.mark.parametrize(
    ("head", "byline", "expected"),
    [
        ("<meta property='article:published_time' content='2026-11-18T15:20:00+09:00'>", "", (15, 20)),
        ("<meta name='pubdate' content='2026-11-18 15:20'>", "", (15, 20)),
        ('<script type="application/ld+json">{"@context": "https://schema.org", "@type": "NewsArticle", '
         '"headline": "포항", "datePublished": "2026-11-18T15:20:00+09:00", "dateModified": "2026-12-01T10:00:00+09:00"}'
         "</script>", "", (15, 20)),
        ('<script type="application/ld+json">{"@context": "https://schema.org", "@graph": [{"@type": "WebPage"}, '
         '{"@type": "NewsArticle", "datePublished": "2026-11-18T06:20:00Z"}]}</script>', "", (15, 20)),
        ("", "<time datetime='2026-11-18T15:20:00+09:00'>11월 18일</time>", (15, 20)),
        ("", "입력 2026.11.18 15:20", (15, 20)),
        ("", "기사입력 2026/11/18 15:20", (15, 20)),
        ("", "승인 2026-11-18", (0, 0)),
        ("", "등록 2026.11.18 오후 3:20", (15, 20)),
        ("", "정다은 기자 | 2026-11-18 15:20", (15, 20)),
        ("", "정다은 기자 ｜ 2026.11.18. 15:20", (15, 20)),
    ],
)
def test_an_articles_own_publication_time_wins_over_the_fetch_time(head: str, byline: str, expected) -> None:
    fetched = datetime(2026, 12, 7, 9, 0, tzinfo=SEOUL)
    raw = RawItem(id="x", source="경북일보", outlet="경북일보", url="https://www.kyongbuk.co.kr/news/1",
                  canonical_url="https://www.kyongbuk.co.kr/news/1", title="포항 이차전지 특화단지 투자협약",
                  html=_dated_page(head, byline), fetched_at=fetched)  # fmt: skip
    article = extract(raw)
    assert article.published_at == datetime(2026, 11, 18, *expected, tzinfo=SEOUL)


def test_broken_json_ld_is_passed_over_for_the_byline() -> None:
    page = _dated_page('<script type="application/ld+json">{"datePublished": </script>', "입력 2026.11.18 15:20")
    raw = RawItem(id="x", source="s", outlet="o", url="https://x/1", canonical_url="https://x/1", title="t", html=page)
    assert extract(raw).published_at == datetime(2026, 11, 18, 15, 20, tzinfo=SEOUL)
