"""Character shingles: how much text two articles share verbatim, at any length from about 100 characters.

A text is read as its letters and digits only (Hangul, CJK, Latin folded to lower case, digits; spaces
and punctuation dropped), so re-spacing, re-punctuating and reflowing change nothing. Every run of
``SHINGLE`` such characters is hashed to 32 bits. Two samples of those hashes serve grouping:

- the **sketch**: the text's smallest hashes (a uniform random sample of its shingles, the same
  choice in every text), stored with the article; the share of it found among a new article's
  shingles estimates how much of the stored text the new one contains (containment, not Jaccard:
  a trimmed lead or a description inside a long article is a copy too);
- the **sample**: every hash below ``SAMPLE_BELOW`` (one in 64; the smallest ``SAMPLE_CAP`` of them),
  posted in the index; two texts that share a passage share its sampled shingles, whichever text is
  longer, so a copy is found as a candidate from its shared passage alone;
- the **passage sample**: every hash below ``PASSAGE_BELOW`` (one in four), ascending, which passages.py
  keeps for recent articles (it is ``passages.sampled`` of the distinct hashes, made here in the same pass).

``shingle_hashes`` uses the compiled core when it is built (see native.py); ``shingle_hashes_py`` is
the reference it is tested against.
"""

from __future__ import annotations

import numpy as np

from processors.grouping import native

SHINGLE = 5  # characters per shingle (5-character shingles separate copies from same-topic texts best)
POOL = 64  # smallest hashes handed back with the distinct ones: the candidates for a sketch
SAMPLE_BELOW = 1 << 26  # hashes below this (1 in 64) are posted in the index
SAMPLE_CAP = 16  # at most this many of them (the smallest): a long text is found by a part of its passages
PASSAGE_BELOW = 1 << 30  # hashes below this (one in four) are the passage sample (passages.SAMPLE_BELOW)

# Code units kept: Hangul syllables, digits, ASCII letters (folded to lower case), CJK ideographs.
_KEEP = np.zeros(1 << 16, dtype=bool)
_KEEP[0xAC00:0xD7A4] = True
_KEEP[0x30:0x3A] = True
_KEEP[0x41:0x5B] = True
_KEEP[0x61:0x7B] = True
_KEEP[0x4E00:0xA000] = True
_FOLD = np.arange(1 << 16, dtype=np.uint16)
_FOLD[0x41:0x5B] += 0x20
_MIX1, _MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)
_EMPTY = np.zeros(0, dtype=np.uint32)


def kept_units(text: str) -> np.ndarray:
    """The text's kept UTF-16 code units, folded (what shingles and character pairs are made of)."""
    codes = np.frombuffer(text.encode("utf-16-le", "surrogatepass"), dtype=np.uint16)
    return _FOLD.take(codes.compress(_KEEP.take(codes)))


def shingle_hashes(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The distinct shingle hashes of a text (in no particular order), its ``POOL`` smallest (ascending), its
    sample: the hashes below ``SAMPLE_BELOW``, at most the ``SAMPLE_CAP`` smallest (ascending), and its passage
    sample: all the hashes below ``PASSAGE_BELOW`` (ascending)."""
    core = native.active()
    if core is not None:
        distinct, pool, sample, passage = core.shingles(text, POOL, SAMPLE_BELOW, SAMPLE_CAP, PASSAGE_BELOW)
        return (np.frombuffer(distinct, native.U32), np.frombuffer(pool, native.U32), np.frombuffer(sample, native.U32),
                np.frombuffer(passage, native.U32))  # fmt: skip
    return shingle_hashes_py(text)


def shingle_hashes_py(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pure-Python twin of ``shingle_hashes`` (numpy); its distinct hashes come sorted."""
    codes = kept_units(text)
    count = len(codes) - SHINGLE + 1
    if count <= 0:
        return _EMPTY, _EMPTY, _EMPTY, _EMPTY
    # Each shingle is its first four characters read as one uint64 (2-byte strides) and its fifth.
    raw = np.concatenate([codes, np.zeros(4, dtype=np.uint16)]).tobytes()
    quads = np.ndarray(shape=(count,), dtype=np.uint64, buffer=raw, strides=(2,))
    hashes = quads * _MIX1
    hashes ^= codes[SHINGLE - 1 : SHINGLE - 1 + count].astype(np.uint64) * _MIX2
    hashes ^= hashes >> np.uint64(29)
    hashes *= _MIX1
    out = np.unique((hashes >> np.uint64(32)).astype(np.uint32))
    return out, out[:POOL], out[out < SAMPLE_BELOW][:SAMPLE_CAP], out[out < PASSAGE_BELOW]


def _pair_hash(first: int, second: int) -> int:
    return ((first * 0x9E3779B1 + second * 0x85EBCA6B) & 0xFFFFFFFF) >> 16


def pair_hashes(text: str) -> list[int]:
    """``char_pairs`` of a short text (a headline's subject) in plain Python: a numpy call costs more."""
    codes = [ord(c) + 0x20 if "A" <= c <= "Z" else ord(c) for c in text if ord(c) < 0x10000 and _KEEP[ord(c)]]
    if len(codes) < 2:
        return codes
    return [_pair_hash(a, b) for a, b in zip(codes, codes[1:], strict=False)]


def char_pairs(text: str) -> np.ndarray:
    """16-bit hashes of a text's adjacent kept characters, distinct and sorted (to compare short names)."""
    codes = kept_units(text).astype(np.uint32)
    if len(codes) < 2:
        return np.zeros(0, dtype=np.uint16) if not len(codes) else codes.astype(np.uint16)
    pairs = (codes[:-1] * np.uint32(0x9E3779B1) + codes[1:] * np.uint32(0x85EBCA6B)) >> np.uint32(16)
    return np.unique(pairs.astype(np.uint16))
