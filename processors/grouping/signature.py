"""What the index keeps of an article, and the bytes it is recorded as.

A new article's features are complete; the index keeps a capped signature of each (a million
articles must fit in a few hundred bytes each): its rarest headline and text words (rare words name
the event), its figures, its headline bigrams and subject, a sketch of its shingles, and the keys it
is posted under. Which words are rarest depends on the window's frequencies when it arrives, so the
record holds both the signature as chosen and what the article added to the frequencies: replaying
the records rebuilds the same index.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from processors.grouping import native, shingles
from processors.grouping.features import Features
from processors.grouping.rarity import Rarity

# Kept per article, rarest first, as (for a headline or snippet, for a long text; features.LONG): a long text
# keeps fewer words and no headline bigrams (its sketch stands for its text), and is posted under fewer words
# (its copies share passages, found by the shingle sample, features.sample, whose hashes are salted so as not to
# meet words').
HEAD_CAP, WORDS_CAP, BIGRAM_CAP = (10, 10), (16, 12), (8, 0)
POST_HEAD, POST_WORDS = (12, 6), (12, 2)
FIGURE_CAP, SUBJECT_CAP = 6, 8
SKETCH_K = 24  # smallest shingle hashes kept to estimate how much of a text another contains
# A shingle among the smallest of this many texts in the window (beyond what collisions in the count table add,
# Rarity.shingle_noise) is boilerplate: not sketched.
COMMON_SHINGLE = 8
SHINGLE_SALT = 0x5BD1E995
REACH_SHIFT = 18  # a sample's reach is kept as its largest hash >> this (a byte: SAMPLE_BELOW is 1 << 26)
VERSION = 4  # of the recorded bytes: a record of another version is not replayed
_FLAG_TEXT, _FLAG_ROUNDUP = 1, 2
_HEADER = struct.Struct("<BIIHB" + "H" * 12)


@dataclass(slots=True)
class Signature:
    """One indexed article: capped feature arrays, and what it counted in the window's frequencies."""

    t: int
    outlet: int
    size: int  # distinct shingles, at most 65,535 (0: no passage to share)
    has_text: bool
    roundup: bool
    head: np.ndarray  # uint32, the rarest headline words
    words: np.ndarray  # uint32, the rarest text words that are not headline words
    figures: np.ndarray  # uint32, headline figures first
    bigrams: np.ndarray  # uint16, the rarest headline bigrams
    subject: np.ndarray  # uint16
    sketch: np.ndarray  # uint32, ascending
    keys: np.ndarray  # uint32 posting keys
    reach: int  # how far its sample reaches (sample_reach): which of another text's samples it could hold
    counted: tuple[np.ndarray, np.ndarray, np.ndarray]  # words (uint32), bigrams (uint16), pool (uint32) counted


def _rarest(hashes: list[int], df: list[float], cap: int) -> list[int]:
    """The ``cap`` hashes of lowest frequency (ties by value); all of them if they fit."""
    if len(hashes) <= cap:
        return hashes
    return [h for _, h in sorted(zip(df, hashes, strict=True))[:cap]]


def sample_reach(sample: np.ndarray) -> int:
    """How far a text's posted sample reaches, as a byte: 255 when it holds every hash below SAMPLE_BELOW;
    otherwise (capped at SAMPLE_CAP) its largest hash >> REACH_SHIFT. Another text's sampled hashes up to
    there are the ones this text would have posted had it carried them (evidence.copy_share counts those)."""
    if len(sample) < shingles.SAMPLE_CAP:
        return 255
    return min(255, int(sample.max()) >> REACH_SHIFT)


def common_shingle(rarity: Rarity) -> int:
    """The count in the window's shingle table from which a shingle is boilerplate (COMMON_SHINGLE texts above the
    table's collision noise), a whole number, as the compiled core compares it."""
    return COMMON_SHINGLE + int(rarity.shingle_noise())


def choose(features: Features, t: int, rarity: Rarity) -> Signature:
    """The signature of a new article at time ``t`` (whole seconds), with the window's frequencies as they are."""
    packed = features.packed()
    head, text_words = packed.head.tolist(), packed.text.tolist()
    head_df, words_df = rarity.word_df(packed.head).tolist(), rarity.word_df(packed.text).tolist()
    pool = features.pool
    sketch = pool[rarity.shingle_df(pool) < common_shingle(rarity)][:SKETCH_K]
    r = int(features.long)  # 0: a headline or snippet, 1: a long text
    keys = _rarest(head, head_df, POST_HEAD[r]) + _rarest(text_words, words_df, POST_WORDS[r])
    head_figures = features.head_figures.tolist()
    in_head = set(head_figures)
    figures = head_figures + [f for f in features.figures.tolist() if f not in in_head]
    return Signature(
        t=t,
        outlet=features.outlet,
        size=min(features.size, 65535),
        has_text=features.has_text,
        roundup=features.roundup,
        head=np.array(_rarest(head, head_df, HEAD_CAP[r]), dtype=np.uint32),
        words=np.array(_rarest(text_words, words_df, WORDS_CAP[r]), dtype=np.uint32),
        figures=np.array(figures[:FIGURE_CAP], dtype=np.uint32),
        bigrams=np.array(_rarest(packed.bigrams.tolist(), rarity.bigrams[packed.bigrams].tolist(), BIGRAM_CAP[r]),
                         dtype=np.uint16),
        subject=packed.subject[:SUBJECT_CAP],
        sketch=sketch,
        keys=np.concatenate([np.array(keys, dtype=np.uint32), features.sample ^ np.uint32(SHINGLE_SALT)]),
        reach=sample_reach(features.sample),
        counted=(packed.everything, packed.bigrams, pool),
    )


def choose_encoded(features: Features, t: int, rarity: Rarity) -> bytes:
    """``encode(choose(...))``, by the compiled core when it is built (what the grouper records and indexes)."""
    core = native.active()
    if core is None:
        return encode(choose(features, t, rarity))
    p = features.packed()
    r = int(features.long)
    common = common_shingle(rarity)
    return core.choose(p.head, p.text, p.everything, p.bigrams, p.figures, features.head_figures, p.subject,
                       features.pool, features.sample, rarity.words, rarity.bigrams, rarity.shingles, t,
                       features.outlet, features.size,
                       _FLAG_TEXT * features.has_text | _FLAG_ROUNDUP * features.roundup,
                       (HEAD_CAP[r], WORDS_CAP[r], BIGRAM_CAP[r], FIGURE_CAP, SUBJECT_CAP, SKETCH_K, common,
                        POST_HEAD[r], POST_WORDS[r], SHINGLE_SALT, VERSION, shingles.SAMPLE_CAP,
                        REACH_SHIFT))  # fmt: skip


def encode(sig: Signature) -> bytes:
    """The recorded bytes of a signature (little-endian arrays after a header of their lengths)."""
    arrays32 = (sig.head, sig.words, sig.figures, sig.sketch, sig.keys, sig.counted[0], sig.counted[2])
    arrays16 = (sig.bigrams, sig.subject, sig.counted[1])
    flags = _FLAG_TEXT * sig.has_text | _FLAG_ROUNDUP * sig.roundup
    lengths = [len(a) for a in arrays32 + arrays16] + [sig.reach, 0]
    head = _HEADER.pack(VERSION, sig.t, sig.outlet, sig.size, flags, *lengths)
    body = b"".join(np.asarray(a, dtype="<u4").tobytes() for a in arrays32)
    return head + body + b"".join(np.asarray(a, dtype="<u2").tobytes() for a in arrays16)


def pooled(blob: bytes | memoryview) -> int:
    """How many smallest shingles the encoded signature counted in the window's frequencies (its ``counted`` pool)."""
    return int(_HEADER.unpack_from(blob)[11])


def encoded_size(blob: bytes) -> int:
    """How many bytes of ``blob`` the encoded signature takes (a trailer may follow: passages.encode);
    ValueError when the header is unreadable."""
    try:
        lengths = _HEADER.unpack_from(blob)[5:]
    except struct.error as exc:
        raise ValueError(f"signature header unreadable: {exc}") from exc
    return _HEADER.size + 4 * sum(lengths[:7]) + 2 * sum(lengths[7:10])


def time_of(blob: bytes) -> int:
    """The time recorded in an encoded signature."""
    return int.from_bytes(blob[1:5], "little")


def decode(blob: bytes) -> Signature:
    """The signature ``encode`` wrote; ValueError when the bytes are not one (or of another version)."""
    try:
        version, t, outlet, size, flags, *lengths = _HEADER.unpack_from(blob)
    except struct.error as exc:
        raise ValueError(f"signature header unreadable: {exc}") from exc
    if version != VERSION:
        raise ValueError(f"signature version {version}, expected {VERSION}")
    at = _HEADER.size
    arrays: list[np.ndarray] = []
    for i, n in enumerate(lengths[:10]):
        dtype = "<u4" if i < 7 else "<u2"
        width = 4 if i < 7 else 2
        if at + n * width > len(blob):
            raise ValueError("signature truncated")
        arrays.append(np.frombuffer(blob, dtype=dtype, count=n, offset=at).astype(np.uint32 if i < 7 else np.uint16))
        at += n * width
    head, words, figures, sketch, keys, counted_words, pool, bigrams, subject, counted_bigrams = arrays
    if lengths[10] > 255:
        raise ValueError(f"signature sample reach {lengths[10]} is not a byte")
    return Signature(t, outlet, size, bool(flags & _FLAG_TEXT), bool(flags & _FLAG_ROUNDUP), head, words, figures,
                     bigrams, subject, sketch, keys, lengths[10], (counted_words, counted_bigrams, pool))  # fmt: skip
