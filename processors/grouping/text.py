"""What an article says, as grouping reads it: its headline, words, subject, figures and lead.

Grouping has its own small normaliser (stages never import each other): NFKC and lower case, a word
scan that keeps Hangul runs, Latin words and figures with their units, and a stem per Hangul word with
its trailing particle removed ("포항시는" meets "포항시"). Two things a Korean headline says about the
event are read separately, because disagreeing on them means two events:

- the **subject**: most headlines name the actor first and put a comma after it ("포스코퓨처엠, 광양에 …");
- **figures** with their units ("7.0%", "428억", "31명", "77km").
"""

from __future__ import annotations

import re
import unicodedata
import zlib

# A word: a Hangul run, a Latin word (with digits, e.g. "rav4"), or a figure with its unit ("400억").
_WORD = re.compile(r"[가-힣]+|[a-z]+\d*[a-z\d]*|\d+(?:[.,]\d+)*[가-힣a-z%㎞]{0,2}")
# fmt: off
_PARTICLES = ("에서는", "으로는", "에서도", "에게서", "이라는", "이라고", "에서", "으로", "에게", "까지",
              "부터", "처럼", "보다", "라는", "라고", "하고", "에는", "와", "과", "은", "는", "이", "가", "을",
              "를", "의", "에", "도", "로", "만", "서")
# fmt: on
_BY_LAST: dict[str, list[str]] = {}
for _p in sorted(_PARTICLES, key=len, reverse=True):
    _BY_LAST.setdefault(_p[-1], []).append(_p)
_ELLIPSIS = ("...", "…")
_SPACES = re.compile(r"\s+")
# The subject: up to 14 characters before the first comma, after any [section] tags.
_SUBJECT = re.compile(r"^\s*(?:\[[^\]]*\]\s*)*([^,，…·\"'‘“\[(]{1,14}?)\s*[,，]\s")
# A figure and its unit. Units are those that name a quantity an event is about; a bare number is not one.
_FIGURE = re.compile(
    r"(\d+(?:[.,]\d+)*)\s?(%|퍼센트|명|억|조|만|원|달러|건|개|곳|배|호|위|세|대|톤|마력|mm|㎜|km|㎞|kwh|mwh|gwh|시|일|월|년)"
)
_UNITS = {u: i + 1 for i, u in enumerate(("%", "명", "억", "조", "만", "원", "달러", "건", "개", "곳", "배", "호", "위",
                                           "세", "대", "톤", "마력", "mm", "km", "kwh", "mwh", "gwh", "시", "일", "월",
                                           "년"))}  # fmt: skip
_UNIT_ALIASES = {"퍼센트": "%", "㎜": "mm", "㎞": "km"}
# Round-ups, digests and opinion pieces name several events in a few words each: never a copy of one release.
_ROUNDUP = re.compile(r"\[[^\]]*(?:사설|칼럼|기고|기자수첩|시론|오피니언|브리핑|소식|모음|단신|위클리|종합뉴스)[^\]]*\]"
                      r"|\s외$|마감시황|오늘의 뉴스")  # fmt: skip
LEAD_CHARS = 300  # characters of a long text whose words stand for it beside its shingles


def norm(text: str) -> str:
    """NFKC, lower case: full-width letters, compatibility forms and case all read alike."""
    return unicodedata.normalize("NFKC", text).lower()


def word_hash(word: str) -> int:
    """Stable 32-bit hash of a word (CRC32 of its UTF-8 bytes; never 0), the same in every process."""
    return zlib.crc32(word.encode("utf-8")) or 1


def stem(word: str) -> str:
    """A Hangul word without its trailing particle, if what remains has two syllables or more."""
    if len(word) >= 3 and "가" <= word[0] <= "힣":
        for particle in _BY_LAST.get(word[-1], ()):
            if word.endswith(particle) and len(word) - len(particle) >= 2:
                return word[: -len(particle)]
    return word


def words(normed: str, cut: bool = False) -> list[str]:
    """The words of a normalised text; single Hangul syllables dropped, and the last word if the text was ``cut``."""
    found = _WORD.findall(normed)
    if cut and found:
        found.pop()
    return [w for w in found if not (len(w) == 1 and "가" <= w <= "힣")]


def strip_outlet(title: str, outlet: str) -> str:
    """The headline without a Google-News style " - outlet" suffix."""
    text = title.strip()
    if outlet and text.endswith(" - " + outlet):
        text = text[: -len(outlet) - 3].rstrip()
    return text


def clean_headline(title: str, outlet: str) -> tuple[str, bool]:
    """The headline without its " - outlet" suffix, and whether it was cut short ("...")."""
    text = strip_outlet(title, outlet)
    cut = text.endswith(_ELLIPSIS)
    if cut:
        text = text.rstrip(".…").rstrip()
    return text, cut


def body_of(text: str, headline: str, outlet: str) -> str:
    """The article text, or "" when it only repeats the headline (feeds that give no summary)."""
    body = text.strip()
    if not body or len(body) > 2 * len(headline) + len(outlet) + 20:
        return body
    head_n = " ".join(norm(headline).split()).strip(" .…")
    body_n = _SPACES.sub(" ", norm(body))
    if outlet and body_n.endswith(norm(outlet)):
        body_n = body_n[: -len(outlet)].rstrip()
    body_n = body_n.strip(" .…")
    echo = body_n.startswith(head_n[: max(8, len(head_n) - 3)]) or head_n.startswith(body_n[: max(8, len(body_n) - 3)])
    return "" if echo and len(body_n) <= len(head_n) + 3 else body


def lead(body: str) -> str:
    """The start of the article proper: skips menu bars, bylines and other short lines left over."""
    limit = min(len(body), 8 * LEAD_CHARS)
    at = 0
    while True:
        end = body.find("\n", at, limit)
        stop = limit if end < 0 else end
        if stop - at >= 60 and body.count("|", at, stop) < 2:
            return body[at : at + LEAD_CHARS]
        if end < 0:
            return body[:LEAD_CHARS]
        at = end + 1


def subject(headline: str) -> str:
    """The actor a headline names before its first comma ("에코프로비엠, …" -> "에코프로비엠"), else ""."""
    found = _SUBJECT.match(headline)
    return found.group(1).strip() if found else ""


def figures(normed: str) -> set[int]:
    """Figures with units in a normalised text, each as (unit number << 24) | 24-bit hash of its value.

    "7.0%" and "7%" are one figure; "428억3000만" gives 428억 and 3000만.
    """
    out = set()
    for value, unit in _FIGURE.findall(normed):
        value = value.replace(",", "")
        if "." in value:
            value = value.rstrip("0").rstrip(".")
        code = _UNITS[_UNIT_ALIASES.get(unit, unit)]
        out.add(code << 24 | (zlib.crc32(value.encode("ascii", "replace")) & 0xFFFFFF))
    return out


def is_roundup(headline: str) -> bool:
    """Whether a headline marks a round-up, digest or opinion piece."""
    return _ROUNDUP.search(headline) is not None
