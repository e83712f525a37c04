"""The evidence that a new article reports the event of a candidate story: each signal on its own.

Every signal is computed for all candidate members at once (numpy over the gathered signatures, see
index.Batch); words count by their rarity in the window (IDF), so names and figures weigh and topic
words do not. Per member (``PAIR``):

- ``head_cos`` / ``bigram_cos``: how alike the headlines are, by words and by in-word bigrams;
- ``cover_min`` / ``cover_max``: how much of each headline the other article says somewhere
  (a reprint under a new headline still says the old headline's words);
- ``text_cos``: how alike their texts' rare words are;
- ``shared_top``: the rarest headline word they share (a name);
- ``copy``: how much text one contains of the other, from shingle sketches (containment, so a
  trimmed lead or a description made of the first sentences is a copy at any length);
- ``figures_agree`` / ``figures_conflict``: a figure of the new headline found in the member, or only
  other figures with the same unit (31명 against 18명: two events);
- ``subject_conflict``: the headlines name different actors first ("브릴스, …" against "싸이몬, …");
- ``log_hours``, ``same_outlet``: distance in time; one outlet rarely carries one release twice.

Per story (``STORY``, what its members say together): the best and the three best pair scores and
the share of members that agree, how much of the new headline the story's vocabulary covers, the
cosine between the new article and the story's centroid (each rare word weighted by the share of
members using it), the story's age and size. decision.py weighs them.

``measure`` has a compiled twin (native.py): on real news most of an article's time went here, as
hundreds of numpy calls on arrays of a dozen values. ``measure_py`` is the reference it is tested against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from processors.grouping import native, signature
from processors.grouping.candidates import Found
from processors.grouping.features import Features
from processors.grouping.index import Batch, Index
from processors.grouping.rarity import PRIOR_DOCS, Rarity

PAIR = ("bias", "head_cos", "bigram_cos", "cover_min", "cover_max", "text_cos", "shared_top", "copy",
        "figures_agree", "figures_conflict", "subject_conflict", "log_hours", "same_outlet")  # fmt: skip
STORY = ("bias", "best", "top3", "cover", "centroid", "log_age", "log_size", "agree")
MIN_COPY_SHINGLES = 60  # distinct shingles (about 60 characters of text) from which a sketch is compared
# Sketch hits taken for noise when a short text is estimated to lie inside a long one: a long text's sketch samples
# a few percent of it, so one hit (a stock phrase) would otherwise read as "all of the short text is there".
NOISE_HITS = 1
# The new text's sample (features.sample) tells how much of it lies inside a member when at least MIN_SAMPLE of
# its sampled hashes are within the member's reach, and when at least SAMPLE_HITS of them found it.
MIN_SAMPLE, SAMPLE_HITS = 3, 2
CENTROID_MIN_IDF = 2.0  # words commoner than this (IDF) are left out of centroids: they name topics, not events
_LOW16 = np.zeros(1 << 16, dtype=bool)  # scratch table of sketch probes, kept all False between uses


@dataclass(slots=True)
class Evidence:
    """What the candidate stories say about a new article.

    ``pairs`` has a row of PAIR features per member compared; ``owner[i]`` is the position in
    ``stories`` of row i's story. ``cover``, ``age_hours`` and ``size`` have an entry per story.
    Story centroids are kept as their Gram matrix (``gram``: dot products of every two centroids),
    their dot products with the new article's vector (``mine_dots``) and its squared norm: enough
    for every cosine between the article, the stories and a story with the article in it.
    """

    stories: np.ndarray
    owner: np.ndarray
    pairs: np.ndarray
    cover: np.ndarray
    gram: np.ndarray
    mine_dots: np.ndarray
    mine_norm2: float
    age_hours: np.ndarray
    size: np.ndarray
    long: bool  # the new article is a long text (it is weighed by the long-text model)
    slots: np.ndarray | None = None  # the index slot of each row of ``pairs`` (what passages.py is asked about)

    def centroid(self) -> list[float]:
        """Cosine between the new article and each story's centroid."""
        norm2 = self.mine_norm2
        return [dot / math.sqrt(own * norm2) if dot > 0 else 0.0
                for dot, own in zip(self.mine_dots.tolist(), np.diag(self.gram).tolist(), strict=True)]  # fmt: skip

    def of(self, story: int) -> np.ndarray:
        """The rows of ``pairs`` that belong to story position ``story``."""
        return self.pairs[self.owner == story]


def _in(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """Whether each value is in a sorted array of distinct values."""
    if not len(sorted_set) or not len(values):
        return np.zeros(len(values), dtype=bool)
    at = np.searchsorted(sorted_set, values).clip(0, len(sorted_set) - 1)
    return sorted_set[at] == values  # type: ignore[no-any-return]


def _sum(owner: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """Per owner, the sum of its weights in order (float64 even when there are none)."""
    return np.bincount(owner, weights=weights, minlength=n).astype(np.float64, copy=False)


def _cosine(mine_idf2: float, values: np.ndarray, owner: np.ndarray, idf: np.ndarray, found: np.ndarray,
            n: int) -> np.ndarray:  # fmt: skip
    """IDF-weighted cosine between the new article's set (squared norm ``mine_idf2``) and each member's set."""
    theirs = _sum(owner, idf * idf, n)
    shared = _sum(owner, idf * idf * found, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(shared / np.sqrt(mine_idf2 * theirs))


def copy_share(new: Features, batch: Batch, shared: np.ndarray) -> np.ndarray:
    """How much text one contains of the other, per member of ``batch`` (0 when neither can tell).

    The member's sketch is a uniform sample of its shingles; the share of it among the new article's
    shingles estimates how much of the member the new one contains, corrected for the chance that a
    16-bit probe meets another shingle. With both sizes, the hits beyond NOISE_HITS also estimate how
    much of the new text is inside the member. That estimate is coarse when the member is much longer
    (its sketch meets a short text a few times at most), so the new text's own sample tells it too:
    of its sampled hashes within the member's reach, the share that found the member (``shared``, from
    candidates.find; a coordinated sample: a passage both carry is sampled in both). The largest of
    the three is the copy share.
    """
    n = len(batch.slots)
    values, owner = batch.sketch
    sizes, n_sketch = batch.size.astype(np.float64), batch.n_sketch
    copy = np.zeros(n)
    if new.size >= MIN_COPY_SHINGLES and len(values):
        low = (new.shingles & 0xFFFF).astype(np.intp)
        _LOW16[low] = True
        hits = _sum(owner, _LOW16[values].astype(np.float64), n)
        _LOW16[low] = False
        chance = min(0.5, len(low) / 65536.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            inside_new = np.nan_to_num(np.maximum(0.0, (hits / n_sketch - chance) / (1 - chance)))
        trusted = np.where(hits > NOISE_HITS, (hits - NOISE_HITS) / np.maximum(n_sketch, 1), 0.0)
        inside_member = np.minimum(1.0, trusted * sizes / new.size)
        ok = (sizes >= MIN_COPY_SHINGLES) & (n_sketch > 0)
        copy = np.where(ok, np.maximum(inside_new, inside_member), 0.0)
    bound = (batch.reach.astype(np.int64) + 1) << signature.REACH_SHIFT
    within = np.searchsorted(new.sample.astype(np.int64), bound)
    with np.errstate(invalid="ignore", divide="ignore"):
        sampled = np.minimum(1.0, shared / within)
    sampled = np.where((within >= MIN_SAMPLE) & (shared >= SAMPLE_HITS), sampled, 0.0)
    return np.maximum(copy, sampled)  # type: ignore[no-any-return]


def figure_signals(figures: np.ndarray, units: np.ndarray, member: tuple[np.ndarray, np.ndarray], n: int
                   ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Per member: a figure found in both articles; a unit of the new headline's figures met only with other values."""
    values, owner = member
    met = _in(values, figures)
    agree = (_sum(owner, met.astype(np.float64), n) > 0).astype(np.float64)
    conflict = np.zeros(n)
    relevant = _in((values >> 24).astype(np.uint8), units)
    if relevant.any():
        key = owner[relevant].astype(np.int64) * 256 + (values[relevant] >> 24)
        keys, where = np.unique(key, return_inverse=True)
        some = np.bincount(where, weights=met[relevant].astype(np.float64), minlength=len(keys)) > 0
        conflict[(keys[~some] // 256).astype(np.int64)] = 1.0
    return agree, conflict


def subject_conflict(subject: np.ndarray, context: np.ndarray, member: tuple[np.ndarray, np.ndarray], n: int
                     ) -> np.ndarray:  # fmt: skip
    """Per member: both headlines name an actor first, the member's actor is not the new one's and is not
    named in the new headline or lead (a spelling variant shares character pairs and is no conflict)."""
    values, owner = member
    if not len(subject) or not len(values):
        return np.zeros(n)
    count = np.bincount(owner, minlength=n)
    shared = _sum(owner, _in(values, subject).astype(np.float64), n) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        named = _sum(owner, _in(values, context).astype(np.float64), n) / count >= 0.5
    return ((count > 0) & ~shared & ~named).astype(np.float64)  # type: ignore[no-any-return]


def measure(new: Features, index: Index, found: Found, t: float
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:  # fmt: skip
    """PAIR features per member found (``found.slots``), and per story (``found.owner`` maps members to
    stories): the cover of the new headline, the Gram matrix of the centroids, their dot products with
    the new article."""
    slots, owner, n_stories = found.slots, found.owner, len(found.stories)
    core = native.active()
    if core is not None:
        p = new.packed()
        rarity = index.rarity
        pairs, cover, gram, dots, norm2 = core.evidence(
            index.records.raw_view(), index.flat32.view(), index.flat16.view(), rarity.words, rarity.bigrams,
            rarity.docs + 1 + PRIOR_DOCS,
            CENTROID_MIN_IDF, (MIN_COPY_SHINGLES, float(NOISE_HITS), MIN_SAMPLE, SAMPLE_HITS, signature.REACH_SHIFT),
            p.head, p.bigrams, p.text, p.everything, p.figures, p.units, p.subject, new.context, new.shingles,
            new.sample, new.size, new.outlet, float(t), slots, owner, found.shared, n_stories)  # fmt: skip
        f64 = native.F64
        return (np.frombuffer(pairs, f64).reshape(len(slots), len(PAIR)), np.frombuffer(cover, f64),
                np.frombuffer(gram, f64).reshape(n_stories, n_stories), np.frombuffer(dots, f64), norm2)  # fmt: skip
    return measure_py(new, index.gather(slots.tolist()), owner, found.shared, n_stories, index.rarity, t)


def measure_py(new: Features, batch: Batch, owner: np.ndarray, shared: np.ndarray, n_stories: int, rarity: Rarity,
               t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:  # fmt: skip
    """The reference of ``measure`` (numpy over the gathered signatures)."""
    n = len(batch.slots)
    p = new.packed()
    head_idf = rarity.word_idf(p.head)
    hv, ho = batch.head
    hv_idf = rarity.word_idf(hv)
    text_idf = rarity.word_idf(p.text)
    wv, wo = batch.words
    wv_idf = rarity.word_idf(wv)
    bv, bo = batch.bigrams
    in_head = _in(hv, p.head)
    head_total = float(head_idf.sum())
    # Share of the new headline's weight found in each member's words (a member's head and words are disjoint).
    found_hv, found_wv = in_head, _in(wv, p.head)
    mass = _sum(ho[found_hv], head_idf[np.searchsorted(p.head, hv[found_hv])], n)
    mass += _sum(wo[found_wv], head_idf[np.searchsorted(p.head, wv[found_wv])], n)
    cover_new = mass / head_total if head_total else np.zeros(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        cover_member = np.nan_to_num(_sum(ho, hv_idf * _in(hv, p.everything), n) / _sum(ho, hv_idf, n))
    top = np.zeros(n)
    np.maximum.at(top, ho[in_head], hv_idf[in_head])
    agree, conflict = figure_signals(p.figures, p.units, batch.figures, n)
    bigram_idf = rarity.bigram_idf(p.bigrams)
    pairs = np.column_stack([
        np.ones(n),
        _cosine(float(np.sum(head_idf * head_idf)), hv, ho, hv_idf, in_head, n),
        _cosine(float(np.sum(bigram_idf * bigram_idf)), bv, bo, rarity.bigram_idf(bv), _in(bv, p.bigrams), n),
        np.minimum(cover_new, cover_member),
        np.maximum(cover_new, cover_member),
        _cosine(float(np.sum(text_idf * text_idf)), wv, wo, wv_idf, _in(wv, p.text), n),
        top / 5.0,
        copy_share(new, batch, shared.astype(np.float64)),
        agree,
        conflict,
        subject_conflict(p.subject, new.pairs(), batch.subject, n),
        np.log1p(np.abs(batch.t - t) / 3600.0),
        ((batch.outlet == (new.outlet & 0xFFFF)) & (new.outlet != 0)).astype(np.float64),  # records keep 16 bits
    ])  # fmt: skip
    # Each story's words: distinct (story, word) pairs, and in how many of its members each occurs.
    values = np.concatenate([hv, wv])
    key = owner[np.concatenate([ho, wo])].astype(np.uint64) << np.uint64(32) | values.astype(np.uint64)
    uniq, count = np.unique(key, return_counts=True)
    story_of = (uniq >> np.uint64(32)).astype(np.int64)
    word = (uniq & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    hit = _in(word, p.head)
    cover = _sum(story_of[hit], head_idf[np.searchsorted(p.head, word[hit])], n_stories)
    cover = cover / head_total if head_total else np.zeros(n_stories)
    # Centroids over one vocabulary (the stories' words and the new article's), rare words only.
    vocabulary = np.union1d(word, p.everything)
    idf = rarity.word_idf(vocabulary)
    idf = np.where(idf > CENTROID_MIN_IDF, idf, 0.0)
    members = np.bincount(owner, minlength=n_stories).astype(np.float64)
    centroids = np.zeros((n_stories, len(vocabulary)))
    np.add.at(centroids, (story_of, np.searchsorted(vocabulary, word)), count / members[story_of])
    centroids *= idf
    mine = np.zeros(len(vocabulary))
    mine[np.searchsorted(vocabulary, p.everything)] = 1.0
    mine *= idf
    return pairs, cover, centroids @ centroids.T, centroids @ mine, float(mine @ mine)


def gather(new: Features, index: Index, found: Found, t: float) -> Evidence:
    """All the evidence about a new article at ``t`` from its candidate stories (candidates.find)."""
    stories = found.stories
    pairs, cover, gram, mine_dots, mine_norm2 = measure(new, index, found, t)
    first, count = index.first, index.members_n
    return Evidence(stories=np.array(stories), owner=found.owner, pairs=pairs, cover=cover, gram=gram,
                    mine_dots=mine_dots, mine_norm2=mine_norm2,
                    age_hours=np.array([max(0.0, t - first[s]) / 3600.0 for s in stories]),
                    size=np.array([count[s] for s in stories], dtype=np.float64), long=new.long,
                    slots=found.slots)  # fmt: skip
