"""Watchlist matching speed: articles/s on ~2 KB Korean articles, ours vs a plain rapidfuzz loop.

Runs the Matcher with the default 4-term watchlist and with a 200-term watchlist
(Korean companies and places, English names), and in the same run a baseline that
calls ``rapidfuzz.fuzz.partial_ratio`` for every alias of every term on the same
articles. Articles are real battery news from ../shared/corpus when present
(concatenated to 2 KB), synthetic Korean otherwise. Single process, one core.

    .venv/bin/python bench/bench_match.py [--seconds 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rapidfuzz import fuzz

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from newsradar.settings import DEFAULT_WATCHLIST, TermSettings
from processors.match import Matcher

DEV = ROOT / ".." / "shared" / "corpus" / "battery_news" / "dev.jsonl"
ARTICLE_CHARS = 2048

_COMPANIES = [
    "삼성SDI", "LG에너지솔루션", "SK온", "에코프로", "에코프로비엠", "에코프로머티리얼즈", "포스코퓨처엠", "포스코홀딩스", "엘앤에프", "코스모신소재",
    "코스모화학", "금양", "천보", "솔브레인", "후성", "동화기업", "엔켐", "대주전자재료", "나노신소재", "피엔티", "하나기술", "씨아이에스", "윤성에프앤씨",
    "신흥에스이씨", "상신이디피", "더블유씨피", "SKC", "SK아이이테크놀로지", "롯데케미칼", "롯데에너지머티리얼즈", "솔루스첨단소재", "일진머티리얼즈", "고려아연",
    "영풍", "성일하이텍", "새빗켐", "아이에스동서", "현대자동차", "기아", "현대모비스", "현대글로비스", "한화솔루션", "한화에어로스페이스", "한화큐셀", "효성중공업",
    "효성첨단소재", "LS일렉트릭", "LS전선", "LS머트리얼즈", "두산에너빌리티", "두산밥캣", "HD현대일렉트릭", "HD한국조선해양", "삼성전자", "SK하이닉스",
    "삼성전기", "LG이노텍", "LG화학", "LG전자", "포스코인터내셔널", "포스코이앤씨", "현대제철", "동국제강", "세아베스틸", "한국전력", "한국가스공사",
    "한국수력원자력", "카카오", "네이버", "셀트리온", "삼성바이오로직스", "한미약품", "유한양행", "대한항공", "아시아나항공", "한진", "CJ대한통운", "쿠팡",
    "신세계", "이마트", "롯데쇼핑", "GS칼텍스", "에쓰오일", "HD현대오일뱅크",
]
_PLACES = [
    "울산", "청주", "오창", "구미", "새만금", "군산", "익산", "광양", "여수", "순천", "목포", "나주", "광주", "대전", "세종", "천안", "아산",
    "당진", "서산", "평택", "화성", "수원", "용인", "이천", "안산", "시흥", "인천", "부산", "창원", "거제", "김해", "진주", "경주", "영천",
    "경산", "대구", "안동", "상주", "김천", "칠곡", "영주", "원주", "강릉", "춘천", "삼척", "동해", "제천", "충주", "음성", "진천", "괴산",
    "보은", "전주", "완주", "정읍", "남원", "김제", "제주", "서귀포", "양산", "밀양", "통영", "사천", "하동", "영암", "해남", "무안",
]
_ENGLISH = [
    "Samsung SDI", "LG Energy Solution", "SK On", "CATL", "BYD", "Panasonic", "Tesla", "General Motors",
    "Ford", "Volkswagen", "BMW", "Mercedes-Benz", "Toyota", "Honda", "Hyundai Motor", "Rivian", "Lucid",
    "Northvolt", "Albemarle", "SQM", "Ganfeng", "Tianqi", "Umicore", "BASF", "Glencore", "Freyr",
    "QuantumScape", "Solid Power", "Redwood Materials", "Li-Cycle", "Gotion", "CALB", "EVE Energy", "SVOLT",
    "Sunwoda", "Envision AESC", "Nissan", "Stellantis", "Rio Tinto", "BHP", "Piedmont Lithium",
    "Lithium Americas", "Ecopro BM", "Posco Future M", "Hanwha Qcells", "Korea Zinc", "Vale",
]


def watchlist_200() -> list[TermSettings]:
    """The default four terms plus Korean companies, places and English names: 200 terms."""
    terms = [TermSettings(**t) for t in DEFAULT_WATCHLIST]
    names = list(dict.fromkeys([*_COMPANIES, *_PLACES, *_ENGLISH]))
    terms += [TermSettings(name=n) for n in names if n not in {t.name for t in terms}]
    if len(terms) < 200:
        raise SystemExit(f"bench: only {len(terms)} terms in the generated watchlist")
    return terms[:200]


def articles(count: int) -> tuple[list[str], str]:
    """``count`` documents of ~2 KB (title, newline, text) and where they came from."""
    if DEV.exists():
        rows = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
        pieces = [f"{r['title']}\n{r['text']}" for r in rows]
        source = f"{DEV.resolve()} ({len(rows)} items, concatenated)"
    else:
        rng = random.Random(7)
        words = ["정부", "발표", "산업", "지원", "기업", "투자", "확대", "지역", "배터리", "전기차", "소재", "공장",
                 "포함", "시장", "올해", "계획", "이차전지", "포항"]
        pieces = [" ".join(rng.choice(words) for _ in range(40)) for _ in range(500)]
        source = "synthetic Korean (../shared/corpus absent)"
    docs: list[str] = []
    i = 0
    while len(docs) < count:
        buf = []
        size = 0
        while size < ARTICLE_CHARS:
            piece = pieces[i % len(pieces)]
            i += 1
            buf.append(piece)
            size += len(piece) + 1
        docs.append("\n".join(buf)[:ARTICLE_CHARS])
    return docs, source


def rate(work: Callable[[str], object], docs: Sequence[str], seconds: float) -> tuple[float, float]:
    """Articles per CPU second for ``work`` over ``docs``: (best round, median round).

    Rounds of one pass over ``docs`` repeat until ``seconds`` of CPU time have passed.
    CPU time of this process is the "one core" figure; the best round is the code's
    own speed (as timeit reports it), the median shows what neighbours on a shared
    machine took away.
    """
    rounds: list[float] = []
    spent = 0.0
    while spent < seconds or len(rounds) < 3:
        start = time.process_time()
        for doc in docs:
            work(doc)
        elapsed = max(time.process_time() - start, 1e-9)
        rounds.append(len(docs) / elapsed)
        spent += elapsed
    return max(rounds), statistics.median(rounds)


def baseline(terms: Sequence[TermSettings]) -> Callable[[str], object]:
    """A plain fuzzy loop: partial_ratio of every alias against the whole article, threshold 90."""
    aliases = [(t.name, a) for t in terms for a in [t.name, *t.aliases]]

    def work(doc: str) -> set[str]:
        return {name for name, alias in aliases if fuzz.partial_ratio(alias, doc, score_cutoff=90)}

    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU seconds per measurement")
    parser.add_argument("--articles", type=int, default=400, help="distinct articles")
    parser.add_argument("--quick", action="store_true", help="a short run (CI smoke): 0.5 s per measurement")
    args = parser.parse_args()
    if args.quick:
        args.seconds = min(args.seconds, 0.5)
    docs, source = articles(args.articles)
    print(f"articles: {len(docs)} x {ARTICLE_CHARS} chars from {source}")
    print("rates are articles per CPU second of this one process (one core)")
    default_terms = [TermSettings(**t) for t in DEFAULT_WATCHLIST]
    for label, terms, floor in (("default 4 terms", default_terms, 20_000), ("200 terms", watchlist_200(), 2_000)):
        matcher = Matcher(terms)
        hits = sum(len(matcher.find(d)) for d in docs) / len(docs)
        found, found_median = rate(matcher.find, docs, args.seconds)
        classify, classify_median = rate(matcher.terms, docs, args.seconds)
        # The baseline is slow: give it fewer articles, so that one pass fits in the time.
        base_docs = docs[: max(10, len(docs) * 4 // len(terms) // 4)]
        base, base_median = rate(baseline(terms), base_docs, min(args.seconds, 5.0))
        verdict = "ok" if found >= floor else "BELOW TARGET"
        print(f"\n{label} ({hits:.1f} matches per article)          best round   median round")
        print(f"  Matcher.find   {found:12,.0f} {found_median:12,.0f} articles/s   target >= {floor:,}: {verdict}")
        print(f"  Matcher.terms  {classify:12,.0f} {classify_median:12,.0f} articles/s")
        print(f"  baseline       {base:12,.0f} {base_median:12,.0f} articles/s   "
              "(rapidfuzz partial_ratio >= 90, every alias)")
        print(f"  find/baseline  {found / base:12,.1f} {found_median / base_median:12,.1f} x")

if __name__ == "__main__":
    main()
