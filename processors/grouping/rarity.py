"""How rare each word is in the recent news: document frequencies over the window, as IDF.

A word that names the event ("RAV4", "이만희", "피엔티") is rare; a word that names the topic ("배터리",
"코로나19") is common this week. Counts live in fixed float32 tables indexed by the hash's low bits
(a count-min row: a collision can only make a word look commoner), and every quarter of the window
all counts lose a quarter, so an article weighs about what it would in a sliding window and nothing
per article is remembered. The decay is deterministic, so replaying the same articles rebuilds the
same counts.
"""

from __future__ import annotations

import math

import numpy as np

WORD_BITS = 20  # 2**20 word counters (4 MB), and as many shingle counters
PRIOR_DOCS = 20  # pseudo-documents added to the count, so that in a young index not every word looks unique
COMMON_FLOOR, COMMON_SHARE = 64, 0.01  # a word in more articles than 64 + 1% of the window finds no candidates
_DECAY_STEPS = 4  # counts lose a quarter of their weight every window / 4
_WORD_MASK = np.uint32((1 << WORD_BITS) - 1)


class Rarity:
    """Decaying document frequencies of word and bigram hashes; IDF from them."""

    def __init__(self, window_s: float) -> None:
        self.span = window_s / _DECAY_STEPS
        self.words = np.zeros(1 << WORD_BITS, dtype=np.float32)
        self.bigrams = np.zeros(1 << 16, dtype=np.float32)
        self.shingles = np.zeros(1 << WORD_BITS, dtype=np.float32)
        self.docs = 0.0
        self.epoch: int | None = None
        self.shingle_mass = 0.0  # shingles counted, decayed as the counts are (what the table holds, collisions aside)

    def advance(self, t: float) -> None:
        """Decay the counts to time ``t`` (nothing if ``t`` is in the current quarter window or before it)."""
        epoch = int(t // self.span)
        if self.epoch is None:
            self.epoch = epoch
            return
        steps = epoch - self.epoch
        if steps <= 0:
            return  # a late article counts in the present
        self.epoch = epoch
        factor = np.float32(0.75**steps) if steps < 60 else np.float32(0.0)
        self.words *= factor
        self.bigrams *= factor
        self.shingles *= factor
        self.docs *= float(factor)
        self.shingle_mass *= float(factor)

    def count(self, words: np.ndarray, bigrams: np.ndarray, pool: np.ndarray) -> None:
        """Count one article's distinct word and bigram hashes and its smallest shingles (``advance`` first).

        Only the smallest shingles are counted: they are the ones a sketch is chosen from, and a stock phrase
        ("무단전재 및 재배포 금지") whose shingle is small is among them in every text that carries it.
        """
        # Fancy-index increments touch each counter once even when hashes share it: at most one per article.
        self.words[words & _WORD_MASK] += 1
        self.bigrams[bigrams] += 1
        self.shingles[pool & _WORD_MASK] += 1
        self.docs += 1
        self.shingle_mass += len(pool)

    def counted_pool(self, n: int) -> None:
        """``n`` smallest shingles were counted in the table by the compiled core (Index.add_encoded)."""
        self.shingle_mass += n

    def word_df(self, hashes: np.ndarray) -> np.ndarray:
        return self.words[hashes & _WORD_MASK]

    def word_idf(self, hashes: np.ndarray) -> np.ndarray:
        """IDF of word hashes: log((documents + 1 + prior) / (frequency + 1)); the new article is the +1."""
        return np.log((self.docs + 1 + PRIOR_DOCS) / (self.words[hashes & _WORD_MASK].astype(np.float64) + 1.0))

    def bigram_idf(self, hashes: np.ndarray) -> np.ndarray:
        return np.log((self.docs + 1 + PRIOR_DOCS) / (self.bigrams[hashes].astype(np.float64) + 1.0))

    def shingle_df(self, hashes: np.ndarray) -> np.ndarray:
        return self.shingles[hashes & _WORD_MASK]

    def shingle_noise(self) -> float:
        """What collisions add to a shingle's count, at most, in all but about one case in a thousand: the mean
        count of a counter plus three standard deviations (a Poisson count).

        Each text counts its 64 smallest shingles (shingles.POOL) in 2**20 counters: past ~100,000 texts in the
        window the counters average several counts each, and from ~250,000 on every shingle looked common
        (signature.COMMON_SHINGLE) and sketches came out empty. The mean comes from ``shingle_mass``, kept as the
        counts are: a stand-by that replays the same records gets the same noise, so it chooses the same sketches.
        """
        mean = self.shingle_mass / len(self.shingles)
        return mean + 3.0 * math.sqrt(mean)

    def common_df(self) -> float:
        """The document frequency from which a word is too common to find candidates with."""
        return COMMON_SHARE * (self.docs + 1) + COMMON_FLOOR

    def nbytes(self) -> int:
        return int(self.words.nbytes + self.bigrams.nbytes + self.shingles.nbytes)
