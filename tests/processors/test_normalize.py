"""normalize / strip_html, and the folding helpers the matcher builds on."""

from __future__ import annotations

import re
import unicodedata

import pytest

from processors.normalize import (
    alias_key,
    compile_plain,
    exact_alternatives,
    fold_with_map,
    fuzzy_alternatives,
    normalize,
    overlap_offsets,
    strip_html,
    to_jamo,
)


def test_normalize_folds_width_quotes_and_dashes() -> None:
    raw = "“ＣＩＢＦ２０２５” 개막 – ‘포항’ 기업 참가—현장"
    assert normalize(raw) == "\"CIBF2025\" 개막 - '포항' 기업 참가-현장"


def test_normalize_removes_invisible_and_bidi_characters() -> None:
    raw = "포\u200b항\u00ad시 \u202e이차전지\u202c 산업\ufeff\u2066육성\u2069"
    assert normalize(raw) == "포항시 이차전지 산업육성"


def test_normalize_removes_control_characters_and_keeps_paragraphs() -> None:
    raw = "제목\x07  입니다\r\n\r\n\r\n\r\n본문\t 첫  줄\x00\n둘째 줄   \n"
    assert normalize(raw) == "제목 입니다\n\n본문 첫 줄\n둘째 줄"


def test_normalize_composes_decomposed_hangul() -> None:
    assert normalize(unicodedata.normalize("NFD", "포항시")) == "포항시"


def test_normalize_is_idempotent_on_a_realistic_paragraph() -> None:
    once = normalize("  ［속보］ 포항시, 이차전지\xa0특화단지 지정…“기업 유치 총력”  ")
    assert once == '[속보] 포항시, 이차전지 특화단지 지정..."기업 유치 총력"'
    assert normalize(once) == once


def test_strip_html_removes_naver_highlights_and_unescapes() -> None:
    title = "<b>포항</b>시, &quot;<b>이차전지</b> 특화단지&quot; 지정 &amp; 투자"
    assert strip_html(title) == '포항시, "이차전지 특화단지" 지정 & 투자'


def test_strip_html_keeps_escaped_markup_as_text() -> None:
    assert strip_html("태그 예시: &lt;b&gt;굵게&lt;/b&gt;") == "태그 예시: <b>굵게</b>"


def test_strip_html_breaks_lines_and_drops_scripts() -> None:
    html = "첫 줄<br/>둘째 줄</p><script>var x = '<b>';</script><p>셋째</p><!-- 주석 -->"
    assert strip_html(html) == "첫 줄\n둘째 줄\n셋째\n"


def test_strip_html_leaves_comparison_signs_alone() -> None:
    assert strip_html("지지율 3 < 5 이고 7 > 2") == "지지율 3 < 5 이고 7 > 2"


def test_fold_with_map_composes_hangul_and_maps_back() -> None:
    text = "속보: " + unicodedata.normalize("NFD", "포항시") + "와 \uf9e1 대통령"
    folded, starts, ends = fold_with_map(text)
    assert folded == "속보: 포항시와 李 대통령"
    a = folded.index("포항")
    span = (starts[a], ends[a + 1])
    assert unicodedata.normalize("NFC", text[span[0]:span[1]]) == "포항"
    b = folded.index("李")
    assert text[starts[b]:ends[b]] == "\uf9e1"


def test_fold_with_map_on_long_text_touches_only_the_odd_part() -> None:
    clean = "배터리 산업 동향 " * 300
    text = clean + unicodedata.normalize("NFD", "이차전지") + clean
    folded, starts, ends = fold_with_map(text)
    assert folded == clean + "이차전지" + clean
    assert len(starts) == len(ends) == len(folded)
    i = folded.index("이차전지")
    assert starts[i] == len(clean) and ends[i + 3] == len(clean) + len(unicodedata.normalize("NFD", "이차전지"))


def test_to_jamo_makes_pohang_and_include_one_edit_apart() -> None:
    assert to_jamo("포항") == "\u1111\u1169\u1112\u1161\u11bc"
    assert to_jamo("포함") == "\u1111\u1169\u1112\u1161\u11b7"
    assert to_jamo("CIBF 2025") == "CIBF 2025"


@pytest.mark.parametrize(
    ("alias", "key"),
    [("이차 전지", "이차전지"), ("Secondary Battery", "secondarybattery"), ("ＣＩＢＦ", "cibf"), ("K-배터리", "k배터리")],
)
def test_alias_key(alias: str, key: str) -> None:
    assert alias_key(alias) == key


def _full(alias: str) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(first) + rest for first, rest in exact_alternatives(alias)))


def test_exact_pattern_latin_boundaries() -> None:
    cibf = _full("CIBF")
    assert cibf.search("CIBF2025") and cibf.search("cibf에서") and cibf.search("(Ｃｉｂｆ)")
    assert not cibf.search("ICBF") and not cibf.search("CIBFX") and not cibf.search("XCIBF")


def test_exact_pattern_spacing_rules() -> None:
    assert _full("이차전지").search("이차 \u200b전지")
    assert not _full("이차전지").search("이차\n전지"), "a newline (title/body boundary) never joins a word"
    assert _full("포항").search("포항시") and not _full("포항").search("목포 항만")
    assert _full("secondary battery").search("SECONDARY-BATTERY")
    assert not _full("secondary battery").search("secondarybattery")
    assert _full("2차전지").search("2 차 전지") and not _full("2차전지").search("12차전지")


def test_fuzzy_alternatives_never_for_short_words_and_open_with_a_literal() -> None:
    assert fuzzy_alternatives("포항", 0) == []
    branches = fuzzy_alternatives("이차전지", 1)
    assert len(branches) == 4
    assert all(first in "이차전지" for first, _, _ in branches)
    patterns = [(re.compile(re.escape(first) + rest), back) for first, rest, back in branches]
    for k in range(4):
        typo = "이차전지"[:k] + "갑" + "이차전지"[k + 1:]
        text = "오늘 " + typo + " 발표"
        starts = [m.start() - back for p, back in patterns if (m := p.search(text))]
        assert text.index(typo) in starts, f"no branch finds the window of {typo}"
    assert all(p.search("오늘 이 차 전기로 가나") is None for p, _ in patterns), "a typo is written without spaces"


def test_compile_plain_and_overlap_offsets() -> None:
    assert compile_plain(["목포항", "POSCO"]).search("posco 목포항")
    assert compile_plain([]).search("아무 것") is None
    assert overlap_offsets("포항제철소", "포항") == [0]
    assert overlap_offsets("포항", "항공") == [1]
    assert overlap_offsets("이차전지", "포항") == []
