"""Slack message building: escaping hostile text, Slack's limits, bold highlights, routing."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from newsradar.settings import RuleSettings, SlackSettings
from notifiers import slack_format as fmt
from tests.notifiers.stories import OUTLETS, SNIPPET, make_story, spans

HOSTILE_TITLES = [
    "<!channel> 긴급: 이차전지 공장 화재",
    "<!here> 포항 특화단지 발표",
    "<@U123> 님 확인 바랍니다",
    "<https://evil.example|여기를 클릭> 이차전지",
    "*굵게* _기울임_ ~취소~ `코드` 이차전지",
    "첫 줄\r\n두 번째 줄\r세 번째\n이차전지",
    "\u202e지전차이\u202c 뒤집힌 제목 \u2066격리\u2069",
    "가" * 5000,
    "&lt;!channel&gt; 이미 이스케이프된 척",
]


def all_texts(blocks: list[dict]) -> list[str]:
    out = []
    for block in blocks:
        if "text" in block:
            out.append(block["text"]["text"])
        out += [e["text"] for e in block.get("elements", [])]
    return out


@pytest.mark.parametrize("title", HOSTILE_TITLES)
def test_hostile_title_cannot_ping_link_or_restyle(title: str) -> None:
    story = make_story(title=title, outlets=("<!everyone>", "정상매체"))
    blocks = fmt.story_blocks(story, "Asia/Seoul")
    texts = all_texts(blocks) + [fmt.fallback_text(story)]
    for text in texts:
        # The only <...> token allowed is our own headline link to the story URL.
        for token in re.findall(r"<[^>]*>", text):
            assert token.startswith("<https://news.example.co.kr/article/1001|"), token
        assert "<!" not in text and "<@" not in text and "<#" not in text
        assert not re.search(r"[\u202a-\u202e\u2066-\u2069]", text)
        assert "\r" not in text and "\n" not in text
    headline = blocks[0]["text"]["text"]
    label = headline.split("|", 1)[1].rsplit(">", 1)[0]
    assert not set("*_~`") & set(label), "title markup must not restyle the message"
    assert all(b["text"].get("verbatim") for b in blocks if "text" in b)


def test_limits_are_respected_for_huge_fields() -> None:
    story = make_story(title="이차전지<" * 2000, outlets=tuple(f"매체{i}&" * 30 for i in range(80)),
                       snippet="이차전지 & <b> " * 400, rules=("규칙",) * 200)
    blocks = fmt.story_blocks(story, "Asia/Seoul")
    assert len(blocks) <= fmt.MAX_BLOCKS
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= fmt.SECTION_LIMIT
        for element in block.get("elements", []):
            assert len(element["text"]) <= fmt.CONTEXT_LIMIT
    assert len(fmt.fallback_text(story)) <= fmt.FALLBACK_LIMIT
    headline = blocks[0]["text"]["text"]
    assert headline.endswith("…>*"), headline[-20:]
    assert not re.search(r"&[a-z]*…", headline), "an entity must not be cut in half"


def test_clip_never_splits_an_entity() -> None:
    for limit in range(2, 40):
        clipped = fmt.clip("<" * 30, limit)
        assert len(clipped) <= limit
        assert re.fullmatch(r"(&lt;)*…", clipped), clipped


def test_snippet_highlights_are_bold_and_everything_else_is_escaped() -> None:
    snippet = "포항 <!here> 이차전지*특화*단지 소식"
    text = fmt.highlighted(snippet, spans(snippet, "이차전지", "포항"))
    assert f"{fmt.ZWSP}*이차전지*{fmt.ZWSP}" in text
    assert f"{fmt.ZWSP}*포항*{fmt.ZWSP}" in text
    assert "&lt;!here&gt;" in text
    assert "＊특화＊" in text  # article asterisks neutralised, ours kept
    assert text.count("*") == 4


def test_bad_highlight_spans_are_ignored_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    text = fmt.highlighted(SNIPPET, [(5, 3), (-1, 4), (0, 10_000), (2, 6), (4, 8)], story_id="s-bad")
    assert text.count("*") == 2  # only (2, 6) survives; (4, 8) overlaps it
    assert "story s-bad: 4 highlight span(s)" in caplog.text
    assert "이차전지" in fmt.highlighted(SNIPPET, [])


def test_message_reads_well_in_korean() -> None:
    story = make_story(outlets=OUTLETS[:3], terms=("이차전지", "포항"), rules=("포항 배터리",))
    blocks = fmt.story_blocks(story, "Asia/Seoul")
    headline, meta = blocks[0]["text"]["text"], blocks[1]["elements"][0]["text"]
    assert headline == "*<https://news.example.co.kr/article/1001|포항시, 이차전지 특화단지 조성 본격화>*"
    assert meta == "연합뉴스 · 2026-06-14 17:17 KST · 키워드: 이차전지, 포항"
    assert f"{fmt.ZWSP}*이차전지*{fmt.ZWSP}" in blocks[2]["text"]["text"]
    context = blocks[3]["elements"][0]["text"]
    assert context.startswith("3개 매체 보도 (carried by 3 outlets): 연합뉴스, 뉴시스, 뉴스1")
    assert "규칙: 포항 배터리" in context
    assert fmt.fallback_text(story) == "[이차전지·포항] 포항시, 이차전지 특화단지 조성 본격화 — 연합뉴스 (3개 매체)"


def test_local_time_is_shown_in_kst() -> None:
    when = datetime(2026, 6, 14, 8, 17, tzinfo=UTC)
    assert fmt.local_time(when, "Asia/Seoul") == "2026-06-14 17:17 KST"
    assert fmt.local_time(None, "Asia/Seoul") == "시각 미상"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://x.example/a", "not a url", "https://"])
def test_non_http_urls_are_not_linked(url: str, caplog: pytest.LogCaptureFixture) -> None:
    blocks = fmt.story_blocks(make_story(url=url), "Asia/Seoul")
    assert "<" not in blocks[0]["text"]["text"]
    assert "not a usable http(s) link" in caplog.text


def test_a_local_file_url_is_not_a_slack_link() -> None:
    """Slack readers are not on the machine that read the offline source: the headline stays unlinked."""
    blocks = fmt.story_blocks(make_story(url="file:///srv/newsradar/demo/city/press-1203.html"), "Asia/Seoul")
    assert "<" not in blocks[0]["text"]["text"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://news.example.co.kr/a?b=1", "https://news.example.co.kr/a?b=1"),
        ("file:///srv/demo/city/press-1203.html", "file:///srv/demo/city/press-1203.html"),
        ("file://localhost/srv/demo/a.html", "file://localhost/srv/demo/a.html"),
        ("file:///srv/데모/a b.html", "file:///srv/%EB%8D%B0%EB%AA%A8/a%20b.html"),
    ],
)
def test_reader_url_keeps_http_and_local_files(url: str, shown: str) -> None:
    assert fmt.reader_url(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://x.example/a",
        "not a url",
        "https://",
        "file://attacker.example/share/a.html",  # SMB: opening it would leak Windows credentials
        "file:relative/a.html",
        "file:///" + "a" * fmt.URL_CHARS,
    ],
)
def test_reader_url_refuses_other_schemes_and_remote_files(url: str) -> None:
    assert fmt.reader_url(url) is None and fmt.http_url(url) is None


def test_url_characters_that_would_end_the_link_are_encoded() -> None:
    url = "https://news.example.co.kr/a?x=1&y=<b>|evil"
    assert fmt.safe_url(url) == "https://news.example.co.kr/a?x=1&amp;y=%3Cb%3E%7Cevil"


def test_routing_by_terms_and_rules_with_default() -> None:
    slack = SlackSettings.model_validate({"default_channel": "#news-radar", "routes": [
        {"terms": ["이차전지"], "channel": "#battery"},
        {"terms": ["포항", "이차전지"], "channel": "#pohang"},
    ]})
    rules = [RuleSettings.model_validate({"name": "포항 배터리", "all": ["포항", "이차전지"], "channel": "#alerts"}),
             RuleSettings.model_validate({"name": "no channel", "any": ["CIBF"]})]
    assert fmt.channels_for(make_story(terms=("이차전지",)), slack, rules) == ["#battery", "#pohang"]
    assert fmt.channels_for(make_story(terms=("포항",), rules=("포항 배터리",)), slack, rules) == ["#pohang", "#alerts"]
    assert fmt.channels_for(make_story(terms=("CIBF",), rules=("no channel",)), slack, rules) == ["#news-radar"]
