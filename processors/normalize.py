"""Text normalisation for Korean news: NFKC, one kind of quote and dash, no control or bidi tricks.

Also what the matcher needs to fold text without moving it: regex patterns that accept
an alias in any case, width and spacing (so spans stay in the original text), an offset
map for the rare text that must be normalised first, and Hangul jamo for typo distance.
"""

from __future__ import annotations

import html
import itertools
import re
import unicodedata
from collections.abc import Sequence

# Quotes and dashes that Korean outlets use interchangeably; folded so that
# dedup and matching see one form.
_QUOTES_DASHES = str.maketrans(
    {
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u00ab": '"', "\u00bb": '"',
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
        "\u2212": "-", "\ufe58": "-", "\ufe63": "-",
    }
)
# Invisible characters that only hide text from readers and filters: zero-width
# spaces and joiners, soft hyphen, BOM, and the bidi embeddings/overrides/isolates
# ("RTL overrides") that can make a headline display differently from its bytes.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
# C0/C1 control characters other than tab and newline.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_HSPACE = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")

_TAG_BREAK = re.compile(r"<\s*(?:br\s*/?|/\s*(?:p|div|li|h[1-6]|tr))\s*>", re.IGNORECASE)
_TAG = re.compile(r"<!--.*?-->|<\s*/?\s*[A-Za-z][^<>]*>", re.DOTALL)
_SCRIPT = re.compile(r"<\s*(script|style)\b[^>]*>.*?<\s*/\s*\1\s*>", re.IGNORECASE | re.DOTALL)


def normalize(text: str) -> str:
    """NFKC, unified quotes/dashes, no control chars or bidi overrides, collapsed whitespace.

    Runs of spaces/tabs become one space, each line is stripped, and more than one
    blank line in a row becomes one, so paragraphs survive. ``\\r\\n`` becomes ``\\n``.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub(" ", text.replace("\t", " "))
    text = text.translate(_QUOTES_DASHES)
    lines = [_HSPACE.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def strip_html(text: str) -> str:
    """Remove tags (Naver search-API ``<b>`` highlights and the like) and unescape entities.

    Line-breaking tags (``<br>``, ``</p>``) become newlines; script and style
    elements are dropped whole. Entities are unescaped after tags are removed, so
    an escaped ``&lt;b&gt;`` stays visible text instead of being taken for a tag.
    """
    text = _SCRIPT.sub("", text)
    text = _TAG_BREAK.sub("\n", text)
    text = _TAG.sub("", text)
    return html.unescape(text)


# --- folding with an offset map (used by the matcher's slow path) -------------------

_JAMO_V = range(0x1161, 0x1176)
_JAMO_T = range(0x11A8, 0x11C3)


def _joins_previous(ch: str) -> bool:
    """True for a char that normalisation may merge into the one before it."""
    return unicodedata.combining(ch) != 0 or ord(ch) in _JAMO_V or ord(ch) in _JAMO_T


def _segment_end(text: str, i: int, stop: int) -> int:
    """End of the normalisation segment starting at ``i``: a base char, its combining
    marks, and (for conjoining Hangul) the vowel and final consonant that compose with it."""
    j = i + 1
    while j < stop and _joins_previous(text[j]):
        j += 1
    return j


def fold_with_map(text: str) -> tuple[str, list[int], list[int]]:
    """NFKC-normalise the parts of ``text`` that are not NFC, remembering where each output char came from.

    Returns ``(folded, starts, ends)``: output char ``k`` came from
    ``text[starts[k]:ends[k]]``, so a span ``(a, b)`` of ``folded`` is
    ``(starts[a], ends[b - 1])`` in ``text``. Used only for text that is not NFC
    (decomposed Hangul from some CMSs, compatibility ideographs such as 李 U+F9E1
    that Korean input methods produce); clean stretches are found by bisection
    and copied as they are, so one odd character costs little.
    """
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []

    def walk(a: int, b: int) -> None:
        if unicodedata.is_normalized("NFC", text[a:b]):
            out.append(text[a:b])
            starts.extend(range(a, b))
            ends.extend(range(a + 1, b + 1))
            return
        if b - a > 32:
            mid = (a + b) // 2
            while mid < b and _joins_previous(text[mid]):
                mid += 1  # never split a character from the marks that compose with it
            if a < mid < b:
                walk(a, mid)
                walk(mid, b)
                return
        i = a
        while i < b:
            j = _segment_end(text, i, b)
            piece = unicodedata.normalize("NFKC", text[i:j])
            out.append(piece)
            starts.extend([i] * len(piece))
            ends.extend([j] * len(piece))
            i = j

    if text:
        walk(0, len(text))
    return "".join(out), starts, ends


# --- Hangul jamo -------------------------------------------------------------------

_SBASE, _SCOUNT, _NCOUNT, _TCOUNT = 0xAC00, 11172, 588, 28


def is_hangul_syllable(ch: str) -> bool:
    """True for a precomposed Hangul syllable (가..힣)."""
    return "\uac00" <= ch <= "\ud7a3"


def to_jamo(text: str) -> str:
    """Decompose Hangul syllables into conjoining jamo (포항 -> ᄑ ᅩ ᄒ ᅡ ᆼ); other chars unchanged.

    One jamo-level slip (포함 vs 포항: ᆷ vs ᆼ) is then one Levenshtein edit.
    """
    out: list[str] = []
    for ch in text:
        code = ord(ch) - _SBASE
        if 0 <= code < _SCOUNT:
            out.append(chr(0x1100 + code // _NCOUNT))
            out.append(chr(0x1161 + (code % _NCOUNT) // _TCOUNT))
            if code % _TCOUNT:
                out.append(chr(0x11A7 + code % _TCOUNT))
        else:
            out.append(ch)
    return "".join(out)


# --- alias patterns: match variants in place instead of normalising the text ------------

# Between Hangul syllables (이차 전지) and around Hangul: spaces and invisible characters,
# never a newline (the title/body boundary must not join two halves of a word).
_GAP = r"[ \t\xa0\u3000\u00ad\u200b-\u200d\u2060\ufeff]*"
# Between two Latin words of an alias (secondary battery, secondary-battery).
_SEP = r"[\s\-\u2010\u2011]+"
# Between Latin and digits or symbols (CIBF2025, CIBF 2025, CIBF-2025).
_GLUE = r"[ \t\xa0\u3000\-\u2010\u2011]*"
_LETTERS = "A-Za-z\uff21-\uff3a\uff41-\uff5a"
_DIGITS = "0-9\uff10-\uff19"
_GAP_CHARS = re.compile(r"[\s\-\u2010\u2011\u00ad\u200b-\u200d\u2060\ufeff]+")


def _kind(ch: str) -> str:
    if is_hangul_syllable(ch):
        return "hangul"
    if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\uf900" <= ch <= "\ufaff":
        return "han"
    if ch.isascii() and ch.isalpha():
        return "letter"
    if ch.isascii() and ch.isdigit():
        return "digit"
    return "other"


def alias_key(text: str) -> str:
    """The folded form two spellings share: NFKC, casefolded, without spaces, hyphens or invisibles."""
    return _GAP_CHARS.sub("", unicodedata.normalize("NFKC", text).casefold())


def strip_gaps(text: str) -> str:
    """``text`` without the whitespace and invisible characters an alias may contain."""
    return _GAP_CHARS.sub("", text)


def is_hangul_word(key: str) -> bool:
    """True when every character of ``key`` is a Hangul syllable (these get typo tolerance)."""
    return bool(key) and all(is_hangul_syllable(ch) for ch in key)


def _variants(ch: str) -> list[str]:
    """``ch`` in every case and width (C, c, Ｃ, ｃ); other characters stand for themselves."""
    if ch.isascii() and ch.isalpha():
        return sorted({ch.lower(), ch.upper(), chr(ord(ch.lower()) + 0xFEE0), chr(ord(ch.upper()) + 0xFEE0)})
    if ch.isascii() and ch.isdigit():
        return [ch, chr(ord(ch) + 0xFEE0)]
    return [ch]


def _char(ch: str) -> str:
    options = _variants(ch)
    return re.escape(ch) if len(options) == 1 else "[" + "".join(options) + "]"


def _chars_with_spacing(alias: str) -> list[tuple[str, bool]]:
    """The alias's characters (NFKC), each with whether whitespace or a hyphen preceded it."""
    out: list[tuple[str, bool]] = []
    spaced = False
    for ch in unicodedata.normalize("NFKC", alias).strip():
        if ch.isspace() or ch in "-\u2010\u2011":
            spaced = True
            continue
        out.append((ch, spaced and bool(out)))
        spaced = False
    return out


def _joint(prev: str, cur: str, spaced: bool, short_word: bool) -> str:
    kinds = {_kind(prev), _kind(cur)}
    if kinds == {"hangul"} and short_word:
        # A two-syllable word is one morpheme: "포 항" is 목포 항만, 세포 항체, 점포 항상...
        # never a spelling of 포항, so only longer words (이차 전지, 특화 단지) may be spaced.
        return ""
    if kinds & {"hangul", "han"}:
        return _GAP  # spacing inside and around Hangul is ignored
    if len(kinds) > 1 or "other" in kinds:
        return _GLUE  # Latin glued to digits, or spaced from them
    return _SEP if spaced else ""


def exact_alternatives(alias: str) -> list[tuple[str, str]]:
    """(first literal character, regex for the rest) pairs that together match ``alias``.

    The first character is split out as a literal for each of its case/width
    variants so the caller can build a regex whose every branch starts with a
    literal. Latin ends get boundaries (CIBF is not inside ICBF or CIBFX, but
    CIBF2025 and CIBF에서 match); Hangul matches inside longer words, and spacing
    inside Hangul is ignored except within a two-syllable word.
    """
    chars = _chars_with_spacing(alias)
    key = alias_key(alias)
    short_word = is_hangul_word(key) and len(key) <= 2
    first = chars[0][0]
    rest: list[str] = []
    if _kind(first) == "letter":
        rest.append(f"(?<![{_LETTERS}].)")
    elif _kind(first) == "digit":
        rest.append(f"(?<![{_DIGITS}].)")
    for (prev, _), (cur, spaced) in itertools.pairwise(chars):
        rest.append(_joint(prev, cur, spaced, short_word) + _char(cur))
    last = chars[-1][0]
    if _kind(last) == "letter":
        rest.append(f"(?![{_LETTERS}])")
    elif _kind(last) == "digit":
        rest.append(f"(?![{_DIGITS}])")
    tail = "".join(rest)
    return [(variant, tail) for variant in _variants(first)]


# Very common syllables of Korean news text (particles, endings, everyday words). A regex
# branch that opens with one of these is tried at many positions, so fuzzy branches
# avoid opening with them when they can.
_COMMON_SYLLABLES = frozenset(
    "이다의는에을를가하고지기서사로한리도자대시일정인수전국어으부제나여주있해장아라비상연원성보들"
    "무소공경과마문개동그안위유산신세업화우진실민선관학발생미회내조물방용분계중차스트터드면적"
)


def _pick_anchor(key: str, fixed: Sequence[int], prefer: frozenset[str]) -> int:
    for i in fixed:
        if key[i] in prefer:
            return i  # already opens another branch: adds no new positions to try
    return next((i for i in fixed if key[i] not in _COMMON_SYLLABLES), fixed[0])


def fuzzy_alternatives(
    key: str, tolerance: int, prefer: frozenset[str] = frozenset()
) -> list[tuple[str, str, int]]:
    """(first literal, regex rest, syllables before the match) with ``tolerance`` syllables wildcarded.

    A jamo-level slip changes exactly one syllable, so a typo of an n-syllable word
    agrees with it on n - 1 syllables in place. A branch opens with its first
    fixed syllable; when the wildcard comes first it opens with a fixed syllable
    further in (one from ``prefer``, the characters other branches already open
    with, or an uncommon one) and checks what comes before with a lookbehind, so
    every branch still opens with a literal. A misspelt word must be written without
    spaces: "이 차 전기" (this car, electricity) is one slip from 이차전지 once
    spaces are ignored, and a slip plus odd spacing is too rare to be worth that noise.
    """
    if tolerance <= 0 or len(key) < 2:
        return []
    out: list[tuple[str, str, int]] = []
    for wild in itertools.combinations(range(len(key)), min(tolerance, len(key) - 1)):
        fixed = [i for i in range(len(key)) if i not in wild]
        anchor = 0 if fixed[0] == 0 else _pick_anchor(key, fixed, prefer)
        first = key[anchor]
        rest = []
        if anchor:
            before = "".join("[가-힣]" if i in wild else re.escape(key[i]) for i in range(anchor))
            rest.append(f"(?<={before}{re.escape(first)})")
        for i in range(anchor + 1, len(key)):
            rest.append("[가-힣]" if i in wild else re.escape(key[i]))
        out.append((first, "".join(rest), anchor))
    return out


def compile_plain(aliases: Sequence[str]) -> re.Pattern[str]:
    """One regex matching any of ``aliases`` exactly (with the case, width and spacing folds)."""
    alternatives = [re.escape(first) + rest for alias in aliases if alias_key(alias)
                    for first, rest in exact_alternatives(alias)]
    return re.compile("|".join(alternatives) if alternatives else "(?!)")


def overlap_offsets(a: str, b: str) -> list[int]:
    """Offsets into key ``a`` where key ``b`` may start and share characters with a hit of ``a``.

    Both inside it (포항 in 포항제철소) and straddling its end (항공 after 포항).
    """
    inside = [i for i in range(len(a) - len(b) + 1) if a.startswith(b, i)]
    straddling = [len(a) - k for k in range(1, min(len(a), len(b))) if a.endswith(b[:k])]
    return sorted(set(inside + straddling))


__all__ = [
    "alias_key",
    "compile_plain",
    "exact_alternatives",
    "fold_with_map",
    "fuzzy_alternatives",
    "is_hangul_syllable",
    "is_hangul_word",
    "normalize",
    "overlap_offsets",
    "strip_gaps",
    "strip_html",
    "to_jamo",
]
