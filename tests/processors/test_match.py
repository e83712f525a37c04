"""The watchlist matcher: labelled sets, spans, fuzzy tolerance, rules, snippets, bad input."""

from __future__ import annotations

import dataclasses
import json
import logging
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsradar.errors import ConfigError
from newsradar.events import Article, Match, decode, encode
from newsradar.settings import RuleSettings, TermSettings, parse
from processors.match import Matcher, _make_match
from processors.normalize import alias_key, strip_gaps

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / ".." / "shared"
DEV = SHARED / "corpus" / "battery_news" / "dev.jsonl"
LABELLED = ROOT / "tests" / "data" / "terms_labelled.jsonl"
DEFAULT = parse({}).watchlist  # the default watchlist, exactly as the daemon gets it


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def document(row: dict[str, Any]) -> str:
    return f"{row['title']}\n{row['text']}" if row["text"] else row["title"]


def dev_rows() -> list[dict[str, Any]]:
    if not DEV.exists():
        pytest.skip(f"real labelled corpus not found at {DEV} (../shared beside the repo)")
    return load(DEV)


@dataclass
class Score:
    """Per-term counts over a labelled file, with every error kept for the failure message."""

    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    fn: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def precision(self, term: str) -> float:
        found = self.tp[term] + self.fp[term]
        return self.tp[term] / found if found else 1.0

    def recall(self, term: str) -> float:
        wanted = self.tp[term] + self.fn[term]
        return self.tp[term] / wanted if wanted else 1.0


def evaluate(matcher: Matcher, rows: list[dict[str, Any]]) -> Score:
    score = Score()
    for row in rows:
        found, wanted = set(matcher.terms(document(row))), set(row["terms"])
        for term in found & wanted:
            score.tp[term] += 1
        for term in found - wanted:
            score.fp[term] += 1
            score.errors.append(f"false hit {term} in {row['id']}: {document(row)[:200]!r}")
        for term in wanted - found:
            score.fn[term] += 1
            score.errors.append(f"miss {term} in {row['id']}: {document(row)[:200]!r}")
    return score


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher.from_settings(DEFAULT)


# --- labelled data -----------------------------------------------------------------


def test_own_labelled_set_is_matched_perfectly(matcher: Matcher) -> None:
    rows = load(LABELLED)
    assert len(rows) >= 60
    positives = Counter(t for row in rows for t in row["terms"])
    assert min(positives[t.name] for t in DEFAULT.terms) >= 8, positives
    assert all(row["relevant"] == bool(row["terms"]) for row in rows)
    score = evaluate(matcher, rows)
    assert not score.errors, "\n".join(score.errors)
    assert sum(score.tp.values()) == sum(positives.values())


def test_dev_corpus_precision_and_recall_per_term(matcher: Matcher) -> None:
    rows = dev_rows()
    score = evaluate(matcher, rows)
    for term in DEFAULT.terms:
        p, r = score.precision(term.name), score.recall(term.name)
        assert p >= 0.99 and r >= 0.99, f"{term.name}: P={p:.4f} R={r:.4f}\n" + "\n".join(score.errors)
    assert sum(score.tp.values()) >= 800  # the file labels 819 term occurrences


def test_include_is_never_taken_for_pohang(matcher: Matcher) -> None:
    rows = [r for r in dev_rows() + load(LABELLED) if "포함" in document(r)]
    include_only = [r for r in rows if "포항" not in document(r) and "pohang" not in document(r).casefold()]
    assert len(include_only) >= 20
    wrong = [r["id"] for r in include_only if "포항" in matcher.terms(document(r))]
    assert not wrong


def test_every_span_indexes_the_original_text(matcher: Matcher) -> None:
    rows = load(LABELLED) + (load(DEV) if DEV.exists() else [])
    aliases = {t.name: {alias_key(a) for a in [t.name, *t.aliases]} for t in DEFAULT.terms}
    checked = 0
    for row in rows:
        text = document(row)
        matches = matcher.find(text)
        assert [m.start for m in matches] == sorted(m.start for m in matches)
        for m in matches:
            assert text[m.start:m.end] == m.surface
            assert m.alias in [m.term, *next(t.aliases for t in DEFAULT.terms if t.name == m.term)]
            if m.score == 100.0:
                key = alias_key(unicodedata.normalize("NFC", strip_gaps(m.surface)))
                assert key in aliases[m.term], (m, row["id"])
            checked += 1
    assert checked >= 56


# --- what a match says ----------------------------------------------------------------


def test_match_is_explained(matcher: Matcher) -> None:
    text = "포항시, 이차 전지 특화단지 지정\n‘CIBF 2025’에 Pohang 기업 참가. 중국국제배터리박랑회 현장"
    got = [(m.term, m.alias, m.surface, text[m.start:m.end], m.score) for m in matcher.find(text)]
    assert got == [
        ("포항", "포항", "포항", "포항", 100.0),
        ("이차전지", "이차전지", "이차 전지", "이차 전지", 100.0),
        ("특화단지", "특화단지", "특화단지", "특화단지", 100.0),
        ("CIBF", "CIBF", "CIBF", "CIBF", 100.0),
        ("포항", "Pohang", "Pohang", "Pohang", 100.0),
        ("CIBF", "중국국제배터리박람회", "중국국제배터리박랑회", "중국국제배터리박랑회", 96.0),
    ]
    assert matcher.terms(text) == ["CIBF", "이차전지", "특화단지", "포항"]


def test_spans_survive_decomposed_hangul_and_compatibility_hanja(matcher: Matcher) -> None:
    text = "\uf9e1 대통령 " + unicodedata.normalize("NFD", "포항시") + " 방문, " + unicodedata.normalize(
        "NFD", "이차전지"
    ) + " 점검"
    matches = matcher.find(text)
    assert [m.term for m in matches] == ["포항", "이차전지"]
    for m in matches:
        assert text[m.start:m.end] == m.surface
        assert unicodedata.normalize("NFC", m.surface) in ("포항", "이차전지")


@pytest.mark.parametrize(
    ("text", "term", "surface"),
    [
        ("이차잔지 소재", "이차전지", "이차잔지"),
        ("아차전지 소재", "이차전지", "아차전지"),
        ("배터리 특화딘지 조성", "특화단지", "특화딘지"),
        ("톡화단지 조성", "특화단지", "톡화단지"),
    ],
)
def test_one_jamo_slip_in_a_long_word_is_found_with_a_lower_score(
    matcher: Matcher, text: str, term: str, surface: str
) -> None:
    (m,) = matcher.find(text)
    assert (m.term, m.surface, m.alias) == (term, surface, term)
    assert 80.0 <= m.score < 100.0


@pytest.mark.parametrize("text", ["포함한 지원", "보조금 포함", "포합 관계", "이 차 전기로 간다", "이사전기 공사", "특화된 단지"])
def test_near_misses_are_not_matches(matcher: Matcher, text: str) -> None:
    assert matcher.find(text) == []


def test_tolerance_is_capped_for_short_words(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        m = Matcher([TermSettings(name="포항", tolerance=2), TermSettings(name="이차전지", tolerance=2)])
    assert "lowered to 0" in caplog.text and "lowered to 1" in caplog.text
    assert m.terms("포함 포항") == ["포항"]
    assert m.terms("기차전기") == [], "two slips in four syllables are never tolerated"
    assert Matcher([TermSettings(name="이차전지", tolerance=0)]).terms("이차잔지") == []


def test_exclusions_drop_hits_inside_the_phrase() -> None:
    m = Matcher([TermSettings(name="포항", aliases=["Pohang"], exclude=["목포항", "Pohang Steel"])])
    assert m.terms("목포항 물동량 증가") == []
    assert m.terms("POHANG STEEL 실적") == []
    hits = m.find("목포항과 포항항 비교")
    assert [(h.start, h.surface) for h in hits] == [(5, "포항")]


def test_every_spelling_of_an_alias_counts() -> None:
    m = Matcher([TermSettings(name="삼성SDI", aliases=["Samsung SDI", "SamsungSDI"])])
    found = [(h.surface, h.alias) for h in m.find("Samsung SDI와 SamsungSDI, samsung-sdi, 삼성 SDI, ISamsungSDI")]
    assert found == [
        ("Samsung SDI", "Samsung SDI"),
        ("SamsungSDI", "Samsung SDI"),
        ("samsung-sdi", "Samsung SDI"),
        ("삼성 SDI", "삼성SDI"),
    ]


def test_an_alias_shared_by_two_terms_counts_for_both(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        m = Matcher([TermSettings(name="포스코", aliases=["POSCO"]), TermSettings(name="철강", aliases=["posco"])])
    assert "listed under both" in caplog.text
    assert m.terms("POSCO 실적 발표") == ["철강", "포스코"]


def test_overlapping_terms_are_all_found() -> None:
    m = Matcher([TermSettings(name="포항"), TermSettings(name="포항제철소"), TermSettings(name="항공")])
    found = [(h.term, h.start, h.end) for h in m.find("포항제철소와 포항공항")]
    assert found == [("포항", 0, 2), ("포항제철소", 0, 5), ("포항", 7, 9), ("항공", 8, 10)]


# --- properties ----------------------------------------------------------------------

_FILLER = st.sampled_from(["오늘", "정부는", "관련", "기업", "발표했다", "지원", "확대", "시장", "계획"])


def _variant(draw: st.DrawFn, alias: str) -> str:
    out = []
    for i, ch in enumerate(alias):
        if ch.isascii() and ch.isalnum():
            ch = draw(st.sampled_from([ch.lower(), ch.upper()])) if ch.isalpha() else ch
            if draw(st.booleans()):
                ch = chr(ord(ch) + 0xFEE0)  # full width
        out.append(ch)
        hangul_pair = i + 1 < len(alias) and "가" <= ch <= "힣" and "가" <= alias[i + 1] <= "힣"
        if hangul_pair and len(alias_key(alias)) > 2 and draw(st.booleans()):
            out.append(draw(st.sampled_from([" ", "  ", "\u3000", "\xa0"])))
    return "".join(out)


@st.composite
def _documents(draw: st.DrawFn) -> tuple[str, str, str]:
    term = draw(st.sampled_from(DEFAULT.terms))
    alias = draw(st.sampled_from([term.name, *term.aliases]))
    before = " ".join(draw(st.lists(_FILLER, max_size=3)))
    after = " ".join(draw(st.lists(_FILLER, max_size=3)))
    variant = _variant(draw, alias)
    return term.name, f"{before} {alias} {after}", f"{before} {variant} {after}"


_PROPERTY_MATCHER = Matcher.from_settings(DEFAULT)


@settings(max_examples=300, deadline=None)
@given(_documents())
def test_matching_ignores_case_width_and_spacing_inside_hangul(case: tuple[str, str, str]) -> None:
    term, plain, variant = case
    m = _PROPERTY_MATCHER
    assert m.terms(plain) == [term]
    assert m.terms(variant) == [term], variant
    (hit,) = m.find(variant)
    assert variant[hit.start:hit.end] == hit.surface and hit.score == 100.0


_NAMES = [
    "울산", "청주", "오창", "구미", "새만금", "군산", "익산", "광양", "여수", "순천", "목포", "나주", "세종", "천안", "아산", "당진", "서산",
    "평택", "김해", "경주", "영천", "경산", "삼성SDI", "LG에너지솔루션", "SK온", "에코프로비엠", "포스코퓨처엠", "엘앤에프", "코스모신소재", "고려아연",
    "성일하이텍", "현대모비스", "한화솔루션", "효성중공업", "LS전선", "두산에너빌리티", "포스코홀딩스", "포스코", "포항제철소", "CATL", "BYD",
    "Panasonic", "Tesla", "General Motors", "Ford", "Volkswagen", "BMW", "Mercedes-Benz", "Toyota", "Honda",
    "Rivian", "Northvolt", "Albemarle", "SQM", "Umicore", "BASF", "Glencore", "Gotion", "EVE Energy",
]


def test_a_long_watchlist_finds_what_each_term_finds_alone() -> None:
    terms = [*DEFAULT.terms, *(TermSettings(name=n) for n in _NAMES)]
    big = Matcher(terms)
    assert len(big._regexes) > 1, "the long watchlist must exercise the split into several regexes"
    alone = [Matcher([t]) for t in terms]
    texts = [document(r) for r in load(LABELLED)] + [
        " · ".join(_NAMES) + " 포항제철소에서 LG에너지솔루션과 panasonic, 에코프로비엠 울산공장",
        "포스코퓨처엠과 포스코홀딩스, 포항제철소와 포항 새만금특화단지 VOLKSWAGEN 고려아연",
    ]
    for text in texts:
        expected = sorted(
            ((h.start, h.end, h.term) for single in alone for h in single.find(text)),
        )
        assert sorted((h.start, h.end, h.term) for h in big.find(text)) == expected, text


# --- rules, config errors, bad input ---------------------------------------------------


def test_rules_route_by_all_any_none() -> None:
    rules = [
        RuleSettings(name="battery-pohang", all=["포항"], any=["이차전지", "특화단지", "CIBF"], channel="#battery-pohang"),
        RuleSettings(name="fair", any=["CIBF"], none=["포항"], channel="#fairs"),
        RuleSettings(name="everything"),
    ]
    m = Matcher(DEFAULT.terms, rules)

    def names(terms: list[str]) -> list[str]:
        return [r.name for r in m.rules_matched(terms)]

    assert names(m.terms("포항시, 이차전지 기업 유치")) == ["battery-pohang", "everything"]
    assert names(["포항"]) == ["everything"]
    assert names(["CIBF"]) == ["fair", "everything"]
    assert names(["CIBF", "포항"]) == ["battery-pohang", "everything"]
    assert names([]) == []
    assert Matcher.from_settings(DEFAULT).rules_matched(["포항"]) == []


@pytest.mark.parametrize(
    ("terms", "rules", "message"),
    [
        ([], [], "watchlist is empty"),
        ([TermSettings(name="포항"), TermSettings(name="포항")], [], "listed twice"),
        ([TermSettings(name="포항", aliases=["  "])], [], "aliases[0]"),
        ([TermSettings(name="포항")], [RuleSettings(name="r", all=["포함"])], "'포함' (rule 'r') is not a watchlist term"),
        ([TermSettings(name="포항")], [RuleSettings(name="r", all=["포항"], none=["포항"])], "can never match"),
        ([TermSettings(name="포항")], [RuleSettings(name="r"), RuleSettings(name="r")], "used twice"),
    ],
)
def test_bad_watchlists_are_config_errors(terms: list[TermSettings], rules: list[RuleSettings], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        Matcher(terms, rules)
    assert message in str(err.value)


def test_non_text_input_is_logged_not_raised(matcher: Matcher, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="processors.match"):
        assert matcher.find(None) == []  # type: ignore[arg-type]
        assert matcher.terms(b"\xed\x8f\xac\xed\x95\xad") == []  # type: ignore[arg-type]
    assert "expected the article document as str, got NoneType" in caplog.text
    assert "got bytes" in caplog.text
    assert matcher.find("") == []


def test_fast_match_objects_equal_constructed_ones() -> None:
    fast = _make_match("포항", "포항", 3, 5, 100.0, "포항")
    slow = Match(term="포항", surface="포항", start=3, end=5, score=100.0, alias="포항")
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert dataclasses.asdict(fast) == dataclasses.asdict(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.start = 4  # type: ignore[misc]
    article = Article(id="a", source="s", outlet="o", url="u", title="포항", text="", matches=(fast,))
    assert decode(encode(article)).matches == (slow,)


# --- snippets ------------------------------------------------------------------------


def _bold(snippet: str, spans: list[tuple[int, int]]) -> list[str]:
    return [snippet[a:b] for a, b in spans]


def test_snippet_centres_on_the_first_body_match_and_cuts_at_words(matcher: Matcher) -> None:
    title = "포항시 배터리 산업 육성 계획 발표"
    body = ("시는 올해 지역 경제 활성화를 위해 다양한 지원책을 마련했다고 밝혔다. " * 4
            + "특히 이차 전지 소재 기업 유치에 힘을 쏟는다. "
            + "시 관계자는 국내외 기업과의 협력을 넓혀 나가겠다고 말했다. " * 4)
    text = f"{title}\n{body}"
    matches = matcher.find(text)
    snippet, spans = matcher.snippet(text, matches, width=80)
    assert snippet.startswith("…") and snippet.endswith("…")
    assert len(snippet) <= 82
    assert _bold(snippet, spans) == ["이차 전지"]
    inner = snippet.strip("…")
    assert inner in " ".join(body.split()), "cuts fall on word boundaries of the body"
    assert not inner.startswith(" ") and not inner.endswith(" ")


def test_snippet_falls_back_to_the_title_and_collapses_whitespace(matcher: Matcher) -> None:
    text = "CIBF 2025   개막…\t포항 기업  참가\n본문에는 관련 단어가 없다."
    snippet, spans = matcher.snippet(text, matcher.find(text))
    assert snippet == "CIBF 2025 개막… 포항 기업 참가"
    assert _bold(snippet, spans) == ["CIBF", "포항"]


def test_snippet_without_matches_is_the_opening_of_the_body(matcher: Matcher) -> None:
    text = "제목\n" + "가나다 " * 100
    snippet, spans = matcher.snippet(text, [], width=40)
    assert spans == [] and snippet.startswith("가나다") and snippet.endswith("…") and len(snippet) <= 41
    assert matcher.snippet("", []) == ("", [])
