"""Features of one article: what grouping compares, as sorted integer arrays.

- ``head``: hashes of the headline's words and their stems; ``head_bigrams``: 16-bit hashes of the
  character bigrams inside its Hangul words of three syllables or more (robust to spelling variants
  and compounds: "전고체배터리" meets "전고체 배터리");
- ``text``: the same hashes for the text's words that are not headline words (a snippet whole; a long
  text's lead, its shingles stand for the rest); ``everything``: headline and text words;
- ``figures`` (headline and text) and ``head_figures``: see text.figures;
- ``subject``: character pairs of the headline's subject (see text.subject), empty when it names none;
- ``shingles``, ``pool``, ``sample`` and ``passage``: the text's distinct shingle hashes, its smallest ones,
  its sampled ones and its passage sample (shingles.py), empty when the text is too short to share a
  passage with another.

The arrays of a new article are complete; what the index keeps of them is chosen in signature.py.
``word_arrays`` has a compiled twin (native.py): scanning and hashing words was the largest part of
an article's time once the evidence was compiled.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from processors.grouping import native, shingles, text

MIN_SHARED_TEXT = 100  # characters of text from which an article can share a passage with another
# Distinct shingles (about 100 characters) from which an uncut text is an article's text, not a headline or a
# snippet cut short ("..."): each kind is weighed by its own model (decision.regime) and kept in its own way.
LONG = 100
_EMPTY32 = np.zeros(0, dtype=np.uint32)
_EMPTY16 = np.zeros(0, dtype=np.uint16)
_EMPTY8 = np.zeros(0, dtype=np.uint8)
_CACHE = 100_000  # words remembered with their hashes (news vocabulary repeats a lot)
_FORMS: dict[str, tuple[int, ...]] = {}
_BIGRAMS: dict[str, tuple[int, ...]] = {}


class Packed(NamedTuple):
    """Sorted contiguous arrays of distinct values: what evidence and the index read."""

    head: np.ndarray  # uint32
    bigrams: np.ndarray  # uint16
    text: np.ndarray  # uint32: text words that are not headline words
    everything: np.ndarray  # uint32: headline and text words
    figures: np.ndarray  # uint32
    units: np.ndarray  # uint8: the units of the headline's figures
    subject: np.ndarray  # uint16


@dataclass(slots=True)
class Features:
    """What grouping knows about one new article."""

    head: np.ndarray
    head_bigrams: np.ndarray
    text: np.ndarray
    everything: np.ndarray
    figures: np.ndarray  # uint32: the headline's and the lead's
    head_figures: np.ndarray  # uint32
    subject: np.ndarray
    shingles: np.ndarray
    pool: np.ndarray
    sample: np.ndarray  # uint32, ascending (shingles.SAMPLE_CAP at most)
    outlet: int
    has_text: bool
    roundup: bool
    cut: bool = False  # the text was cut short ("...", a snippet)
    context: str = ""  # headline and lead, where another story's subject is looked for (see ``pairs``)
    # uint32, ascending: the shingle hashes below shingles.PASSAGE_BELOW (passages.sampled of ``shingles``)
    passage: np.ndarray = field(default_factory=lambda: _EMPTY32)
    _packed: Packed | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        """How many distinct shingles the text has (0: too short to share a passage)."""
        return len(self.shingles)

    @property
    def long(self) -> bool:
        """Whether the article comes with its text (not a headline or a snippet): see LONG."""
        return len(self.shingles) >= LONG and not self.cut

    def pairs(self) -> np.ndarray:
        """Character pairs of the headline and lead (where evidence looks for another story's subject)."""
        return shingles.char_pairs(self.context)

    def packed(self) -> Packed:
        """The arrays as evidence reads them, made once when first asked for."""
        if self._packed is None:
            units = sorted({f >> 24 for f in self.head_figures.tolist()})
            self._packed = Packed(self.head, self.head_bigrams, self.text, self.everything, self.figures,
                                  np.array(units, dtype=np.uint8) if units else _EMPTY8, self.subject)  # fmt: skip
        return self._packed

    @classmethod
    def empty(cls) -> Features:
        """Features of an article with nothing readable (grouped as a story of its own)."""
        return cls(_EMPTY32, _EMPTY16, _EMPTY32, _EMPTY32, _EMPTY32, _EMPTY32, _EMPTY16, _EMPTY32, _EMPTY32, _EMPTY32,
                   0, False, False)  # fmt: skip


def _remember(cache: dict[str, tuple[int, ...]], word: str, hashes: tuple[int, ...]) -> tuple[int, ...]:
    if len(cache) >= _CACHE:
        cache.clear()
    cache[word] = hashes
    return hashes


def _forms(found: list[str]) -> set[int]:
    """Hashes of each word and of its stem."""
    out: set[int] = set()
    for word in found:
        hashes = _FORMS.get(word)
        if hashes is None:
            stemmed = text.stem(word)
            hashes = (text.word_hash(word),) if stemmed == word else (text.word_hash(word), text.word_hash(stemmed))
            _remember(_FORMS, word, hashes)
        out.update(hashes)
    return out


def _bigrams(found: list[str]) -> set[int]:
    """16-bit hashes of the bigrams inside Hangul words of three syllables or more."""
    out: set[int] = set()
    for word in found:
        if len(word) >= 3 and "가" <= word[0] <= "힣":
            hashes = _BIGRAMS.get(word)
            if hashes is None:
                pairs = (word[i : i + 2] for i in range(len(word) - 1))
                hashes = _remember(_BIGRAMS, word, tuple((zlib.crc32(p.encode()) & 0xFFFF) or 1 for p in pairs))
            out.update(hashes)
    return out


def _array(values: set[int], dtype: type) -> np.ndarray:
    if not values:  # most headlines name no subject: one shared empty array
        return _EMPTY32 if dtype is np.uint32 else _EMPTY16 if dtype is np.uint16 else np.zeros(0, dtype=dtype)
    return np.array(sorted(values), dtype=dtype)


def word_arrays(head_norm: str, head_cut: bool, body_norm: str, body_cut: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Headline forms, headline bigrams, text forms not in the headline, and all forms, as sorted arrays."""
    core = native.active()
    if core is not None:
        head, bigrams, rest, everything = core.word_sets(head_norm, head_cut, body_norm, body_cut)
        return (np.frombuffer(head, native.U32), np.frombuffer(bigrams, native.U16), np.frombuffer(rest, native.U32),
                np.frombuffer(everything, native.U32))  # fmt: skip
    return word_arrays_py(head_norm, head_cut, body_norm, body_cut)


def word_arrays_py(head_norm: str, head_cut: bool, body_norm: str, body_cut: bool
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """The reference of ``word_arrays``."""
    head_words = text.words(head_norm, head_cut)
    head, words = _forms(head_words), _forms(text.words(body_norm, body_cut))
    return (_array(head, np.uint32), _array(_bigrams(head_words), np.uint16), _array(words - head, np.uint32),
            _array(head | words, np.uint32))  # fmt: skip


def figure_arrays(head_norm: str, lead_norm: str) -> tuple[np.ndarray, np.ndarray]:
    """The headline's figures, and the headline's and the lead's, as sorted arrays (text.figures)."""
    core = native.active()
    if core is not None:
        head, everything = core.figures(head_norm, lead_norm)
        return np.frombuffer(head, native.U32), np.frombuffer(everything, native.U32)
    head_figures = text.figures(head_norm)
    return _array(head_figures, np.uint32), _array(head_figures | text.figures(lead_norm), np.uint32)


@functools.lru_cache(maxsize=4096)  # a feed names its outlet on every item
def outlet_hash(outlet: str) -> int:
    """The hash of an outlet's normalised name; 0 for no name."""
    name = outlet.strip()
    return text.word_hash(text.norm(name)) if name else 0


def extract(title: str, body: str, outlet: str) -> Features:
    """Features of an article from its title, text and outlet name."""
    headline, cut = text.clean_headline(title, outlet)
    head_norm = text.norm(headline)
    content = text.body_of(body, headline, outlet)
    long = len(content) >= 2 * text.LEAD_CHARS
    lead = text.lead(content) if long else content
    lead_norm = text.norm(lead)
    snippet_cut = content.rstrip().endswith(("...", "…")) and not long
    head, bigrams, rest, everything = word_arrays(head_norm, cut, lead_norm, snippet_cut or long)
    distinct = pool = sample = passage = _EMPTY32
    if len(content) >= MIN_SHARED_TEXT:
        distinct, pool, sample, passage = shingles.shingle_hashes(content)
    head_figures, figures = figure_arrays(head_norm, lead_norm)
    return Features(
        head=head,
        head_bigrams=bigrams,
        text=rest,
        everything=everything,
        figures=figures,
        head_figures=head_figures,
        subject=_array(set(shingles.pair_hashes(text.subject(headline))), np.uint16),
        shingles=distinct,
        pool=pool,
        sample=sample,
        outlet=outlet_hash(outlet),
        has_text=bool(content),
        roundup=text.is_roundup(headline),
        cut=snippet_cut,
        context=headline + " " + lead,
        passage=passage,
    )
