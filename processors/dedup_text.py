"""Grouping features of one article: stable token hashes of its headline and lead, and a shingle sketch.

Grouping needs its own small normaliser (stages never import each other) and, for speed, features
that are plain integers: CRC32 hashes of words (stable across restarts, so they can be persisted),
16-bit hashes of in-word character bigrams (robust to Korean particles, spelling variants and
compounds), and a bottom-k sketch of 8-character shingles of the whole text for near-verbatim copies.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from processors import dedup_native

# A headline word: a Hangul run, a Latin word (with digits, e.g. "rav4"), or a figure with its unit ("400억").
_WORD = re.compile(r"[가-힣]+|[a-z]+\d*[a-z\d]*|\d+(?:[.,]\d+)*[가-힣a-z%㎞]{0,2}")
# Trailing particles and endings stripped to get a second, stem form of a Hangul word.
# fmt: off
_PARTICLES = sorted(
    ["에서는", "으로는", "에서도", "에게서", "이라는", "이라고", "에서", "으로", "에게", "까지", "부터", "처럼",
     "보다", "라는", "라고", "하고", "에는", "와", "과", "은", "는", "이", "가", "을", "를", "의", "에", "도", "로",
     "만", "서"],
    key=len,
    reverse=True,
)
# fmt: on
_SPACES = re.compile(r"\s+")
_ELLIPSIS = ("...", "…")

LONG_TEXT = 400  # characters of main text from which an article counts as full text (sketched)
LEAD_CHARS = 160  # characters of a full text whose words are compared with headlines and snippets
SKETCH_K = 16  # shingle hashes kept per full text
SHINGLE = 8  # characters per shingle (spaces and punctuation removed first)
_SKETCH_POOL = 2 * SKETCH_K  # smallest hashes looked at before dropping boilerplate ones


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


_HASHES: dict[str, int] = {}  # word -> hash; cleared when full (news vocabulary repeats a lot)
_HASH_CACHE = 50_000


def word_hash(word: str) -> int:
    """Stable 32-bit hash of a word (CRC32 of its UTF-8 bytes), never 0."""
    h = _HASHES.get(word)
    if h is None:
        if len(_HASHES) >= _HASH_CACHE:
            _HASHES.clear()
        h = _HASHES[word] = zlib.crc32(word.encode("utf-8")) or 1
    return h


_BY_LAST: dict[str, list[str]] = {}
for _p in _PARTICLES:
    _BY_LAST.setdefault(_p[-1], []).append(_p)  # longest first, as in _PARTICLES


def _stem(word: str) -> str:
    if len(word) >= 3 and "가" <= word[0] <= "힣":
        for particle in _BY_LAST.get(word[-1], ()):
            if word.endswith(particle) and len(word) - len(particle) >= 2:
                return word[: -len(particle)]
    return word


def words(text: str, cut: bool = False) -> list[str]:
    """Normalised words of a text; drops single Hangul syllables and, if ``cut``, the last (truncated) word."""
    return _words_of(_norm(text), cut)


def _words_of(norm: str, cut: bool) -> list[str]:
    """``words`` of a text already normalised."""
    found = _WORD.findall(norm)
    if cut and found:
        found.pop()
    return [w for w in found if not (len(w) == 1 and "가" <= w <= "힣")]


def strip_outlet(title: str, outlet: str) -> str:
    """The headline without a Google-News style " - outlet" suffix."""
    text = title.strip()
    if outlet and text.endswith(" - " + outlet):
        text = text[: -len(outlet) - 3].rstrip()
    return text


def clean_title(title: str, outlet: str) -> tuple[str, bool]:
    """The headline without a Google-News style " - outlet" suffix; also says whether it was cut ("...")."""
    text = strip_outlet(title, outlet)
    cut = text.endswith(_ELLIPSIS)
    if cut:
        text = text.rstrip(".…").rstrip()
    # Section tags like [시승기] or [포토] are kept as words: they help (e.g. a test-drive wave).
    return text.replace("[", " ").replace("]", " "), cut


def body_of(text: str, title: str, outlet: str) -> str:
    """The article text, or "" when it only repeats the headline (feeds that give no summary)."""
    return _body(text, _norm(clean_title(title, outlet)[0]), outlet)


def _body(text: str, head_norm: str, outlet: str) -> str:
    """``body_of`` given the cleaned headline, normalised (``extract`` has it already)."""
    body = text.strip()
    if not body:
        return ""
    head_n = " ".join(head_norm.split()).strip(" .…")  # = _SPACES.sub(" ", ...) once stripped; no regex cost
    if len(body) > 2 * len(head_n) + len(outlet) + 20:
        return body  # far longer than the headline: real text
    body_n = _SPACES.sub(" ", _norm(body))
    if outlet and body_n.endswith(_norm(outlet)):
        body_n = body_n[: -len(outlet)].rstrip()
    body_n = body_n.strip(" .…")
    echo = body_n.startswith(head_n[: max(8, len(head_n) - 3)]) or head_n.startswith(body_n[: max(8, len(body_n) - 3)])
    return "" if echo and len(body_n) <= len(head_n) + 3 else body


# Per-word caches in two generations: when the young one is full it becomes the old one, so words
# still in use survive (news vocabulary repeats a lot) and memory stays bounded.
_GENERATION = _HASH_CACHE // 2
_FORMS: list[dict[str, tuple[int, ...]]] = [{}, {}]  # word -> hashes of the word and its stem
_BIGRAMS: list[dict[str, tuple[int, ...]]] = [{}, {}]  # word -> its bigram hashes


def _remember(
    caches: list[dict[str, tuple[int, ...]]], word: str, make: Callable[[str], tuple[int, ...]]
) -> tuple[int, ...]:
    """The hashes of a word missing from the young cache: from the old one or made afresh, kept as young."""
    hashes = caches[1].get(word) or make(word)
    young = caches[0]
    if len(young) >= _GENERATION:
        caches[1] = young
        young = caches[0] = {}
    young[word] = hashes
    return hashes


def _forms_of(word: str) -> tuple[int, ...]:
    h = zlib.crc32(word.encode("utf-8")) or 1
    stem = _stem(word)
    return (h,) if stem == word else (h, zlib.crc32(stem.encode("utf-8")) or 1)


def forms(found: list[str]) -> set[int]:
    """Hashes of each word and of its stem (so "포항시는" meets "포항시")."""
    out: set[int] = set()
    for word in found:
        out.update(_FORMS[0].get(word) or _remember(_FORMS, word, _forms_of))
    return out


def _bigrams_of(word: str) -> tuple[int, ...]:
    pairs = (word[i : i + 2].encode("utf-8") for i in range(len(word) - 1))
    return tuple((zlib.crc32(pair) & 0xFFFF) or 1 for pair in pairs)


def bigrams(found: list[str]) -> set[int]:
    """16-bit hashes of character bigrams inside Hangul words of three or more syllables."""
    out: set[int] = set()
    for word in found:
        if len(word) >= 3 and "가" <= word[0] <= "힣":
            out.update(_BIGRAMS[0].get(word) or _remember(_BIGRAMS, word, _bigrams_of))
    return out


# Code units kept in shingles: Hangul syllables, digits, ASCII letters (folded to lower case), CJK.
_KEEP = np.zeros(1 << 16, dtype=bool)
_KEEP[0xAC00:0xD7A4] = True
_KEEP[0x30:0x3A] = True
_KEEP[0x41:0x5B] = True
_KEEP[0x61:0x7B] = True
_KEEP[0x4E00:0xA000] = True
_FOLD = np.arange(1 << 16, dtype=np.uint16)
_FOLD[0x41:0x5B] += 0x20
_MIX1, _MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)


def shingle_hashes(text: str) -> tuple[np.ndarray, np.ndarray]:
    """The distinct 32-bit hashes of a text's 8-character shingles (letters and digits only), and the
    ``_SKETCH_POOL`` smallest of them, ascending (the candidates for its sketch).

    The distinct hashes come in no particular order: they are only probed (and counted), and the
    compiled core saves a full sort by leaving them in the order first seen.
    """
    core = dedup_native.active()
    if core is not None:
        distinct, pool = core.shingles(text, _SKETCH_POOL)
        return np.frombuffer(distinct, dtype=np.uint32), np.frombuffer(pool, dtype=np.uint32)
    return shingle_hashes_py(text)


def shingle_hashes_py(text: str) -> tuple[np.ndarray, np.ndarray]:
    """The pure-Python twin of shingle_hashes (numpy); its distinct hashes come sorted."""
    codes = np.frombuffer(text.encode("utf-16-le", "surrogatepass"), dtype=np.uint16)
    codes = _FOLD.take(codes.compress(_KEEP.take(codes)))  # take/compress: fancy indexing's result, faster
    count = len(codes) - SHINGLE + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.uint32)
    # Every 4-character window read as one uint64 (2-byte strides), two of them make a shingle.
    raw = codes.tobytes()
    quads = np.ndarray(shape=(len(codes) - 3,), dtype=np.uint64, buffer=raw, strides=(2,))
    hashes = quads[:count] * _MIX1
    hashes ^= quads[4 : 4 + count] * _MIX2
    hashes ^= hashes >> np.uint64(29)
    hashes *= _MIX1
    out = (hashes >> np.uint64(32)).astype(np.uint32)
    out.sort()
    distinct = np.empty(len(out), dtype=bool)
    distinct[0] = True
    np.not_equal(out[1:], out[:-1], out=distinct[1:])
    out = out[distinct]
    return out, out[:_SKETCH_POOL]


def word_features(norm: str, cut: bool, with_bigrams: bool) -> tuple[set[int], set[int], bytes | None, bytes | None]:
    """``forms`` of the words of a normalised text (``_norm``: NFKC, lower case) and, if asked, their ``bigrams``
    (else an empty set); from the compiled core also the same two sorted, as uint32 bytes (else None)."""
    core = dedup_native.active()
    if core is not None:
        found, pairs, found_sorted, pairs_sorted = core.word_features(norm, cut, with_bigrams)
        return found, pairs if with_bigrams else set(), found_sorted, pairs_sorted
    found = _words_of(norm, cut)
    return forms(found), bigrams(found) if with_bigrams else set(), None, None


def _lead(body: str) -> str:
    """The start of the article proper: skips menu bars, bylines and other short lines left over."""
    limit = min(len(body), 8 * LEAD_CHARS)  # looked at no further (searched in place, not copied)
    at = 0
    while True:  # line by line without splitting them all: the first line is usually the one
        end = body.find("\n", at, limit)
        stop = limit if end < 0 else end
        if stop - at >= 60 and body.count("|", at, stop) < 2:
            return body[at : at + LEAD_CHARS]
        if end < 0:
            return body[:LEAD_CHARS]  # no line looks like text: keep the start
        at = end + 1


@dataclass(slots=True)
class Features:
    """What grouping knows about one article (the new one: full sets; stored ones: capped arrays)."""

    title: set[int]
    title_bigrams: set[int]
    body: set[int]
    has_body: bool
    outlet: int
    shingles: np.ndarray | None  # a full text's distinct shingle hashes, any order (only for the article assigned)
    pool: np.ndarray | None  # its smallest shingle hashes, ascending: candidates for the sketch
    # title, body and title_bigrams sorted, as uint32 bytes, when the compiled core extracted them (it reads
    # these rather than the sets); None otherwise
    packed: tuple[bytes, bytes, bytes] | None = None

    def sorted_words(self) -> tuple[set[int] | bytes, set[int] | bytes, set[int] | bytes]:
        """Title, body and title bigram hashes as the compiled core reads them: packed if possible, else the sets."""
        return self.packed or (self.title, self.body, self.title_bigrams)


@functools.lru_cache(maxsize=4096)  # a feed names its outlet on every item
def _outlet_hash(outlet: str) -> int:
    """The hash of an outlet's normalised name; 0 for no name."""
    name = outlet.strip()
    return word_hash(_norm(name)) if name else 0


def extract(title: str, text: str, outlet: str) -> Features:
    """Features of an article from its title, text and outlet name."""
    head, cut = clean_title(title, outlet)
    head_norm = _norm(head)
    title_forms, title_bigrams, packed_title, packed_bigrams = word_features(head_norm, cut, True)
    body = _body(text, head_norm, outlet)
    shingles = pool = None
    if len(body) >= LONG_TEXT:
        shingles, pool = shingle_hashes(body)
        if len(shingles) < SKETCH_K:
            shingles = pool = None
        body_forms, _, packed_body, _ = word_features(_norm(_lead(body)), True, False)
    else:
        body_forms, _, packed_body, _ = word_features(_norm(body), body.rstrip().endswith(_ELLIPSIS), False)
    packed = None
    if packed_title is not None and packed_body is not None and packed_bigrams is not None:
        packed = (packed_title, packed_body, packed_bigrams)
    return Features(
        title=title_forms,
        title_bigrams=title_bigrams,
        body=body_forms,
        has_body=bool(body),
        outlet=_outlet_hash(outlet),
        shingles=shingles,
        pool=pool,
        packed=packed,
    )
