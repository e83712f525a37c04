"""Is a new article a copy of an indexed one, and of which story? The scoring rules of grouping.

Two regimes. Full texts (both sketched) are copies only when near-verbatim: the bottom-k shingle
sketches estimate resemblance and containment, so trimmed, reordered or translated copies still
match while two reports of different events never do, however similar their vocabulary. Headlines
and snippets are scored in two steps, both logistic models fitted by bench/fit_grouping.py on the
labelled dev set. Each candidate member gets a pair score from same-event evidence weighted by
rarity (IDF over the window): overlap of headline words, of in-word bigrams, of each headline inside
the other item, of snippets, with penalties for distance in time and for coming from the same
outlet. Each candidate story then gets a probability from what its members say together: the best
pair score, whether several members agree, how much of the new headline the story's vocabulary
covers (a reprint under a new headline matches the story better than any one member), and how old
the story is (a follow-up days later is usually a new release on the same topic).

One event is often reported from several angles at once (a ministry's announcement with each
region's local version, a press test drive reviewed by ten outlets in their own words): no two
reports are copies, yet the stories they start share their rare words. After each headline/snippet
decision the story the article lands in is compared, as a whole, with the other candidate stories
that began within a few hours of it; stories whose IDF-weighted vocabularies agree are merged
(``stories_similar``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from processors.dedup_index import Frequencies, Stored
from processors.dedup_text import Features, strip_outlet

PRIOR_DOCS = 20  # pseudo-documents added to the window size so early articles do not look unique
COMMON_FLOOR, COMMON_SHARE = 64, 0.01  # a word in more articles than 64 + 1% of the window finds no candidates
# Logistic weights of pair_features and story_features, in order: the output of bench/fit_grouping.py.
# Fitted on dev.jsonl, so in-sample there; held-out figures are in the docstring of test_dev_set_*.
WEIGHTS = (-1.52, -5.162, 6.544, 13.094, 4.574, 9.772, -0.876, 1.887, -0.818, -0.966, -2.751, -0.703, -7.603)
STORY_WEIGHTS = (-2.308, 0.709, 0.285, 3.195, -0.581)
JOIN_AT = 0.5  # story probability from which the new article joins the story
PAIR_LOGIT_CAP = 8.0  # pair scores are compared as logits within +-8 (a near-certain pair is just that)
AGREE_K = 3  # story_features: mean pair score of this many best members (missing ones count as -8)
NEAR_RESEMBLANCE = 0.25  # full texts: estimated Jaccard of shingles from which they are copies
NEAR_CONTAINMENT = 0.40  # full texts: share of one text estimated to be inside the other
SAME_OUTLET_TITLE = 0.50  # same outlet: headlines must agree this much too (shared page furniture)
# Story merging (stories_similar): cosine of IDF-weighted word centroids from which two stories are
# one event, the most hours between their first members, and the IDF under which a word is ignored.
# Chosen on dev.jsonl with the join model above fixed; see test_dev_set_* for the figures.
MERGE_AT, MERGE_HOURS, MERGE_MIN_IDF = 0.12, 3.0, 2.0
ROUNDUP_SAME_TITLE = 0.8  # a round-up joins only a story carrying its own headline (the same item via another feed)
# Round-ups, digests and opinion pieces: never copies of one release (the story policy), whatever words they share.
ROUNDUP = re.compile(r"\[[^\]]*(?:사설|칼럼|기고|기자수첩|시론|오피니언|브리핑|소식|모음|단신)[^\]]*\]|\s외$|마감시황")
MERGE_MIN_DOCS = 200  # articles the window must hold before merging: in a young index every word looks rare


class Rarity:
    """IDF of word and bigram hashes over the window, looked up in batches and cached per assignment.

    The new article counts as one of the documents, so its own words and bigrams occur once more
    than the window says. Every IDF is computed elementwise in float32, so a value never depends on
    which batch it was looked up in.
    """

    def __init__(self, freq: Frequencies, new: Features) -> None:
        self._freq = freq
        self._n = freq.n + 1 + PRIOR_DOCS
        self._common_below = math.log(self._n / (COMMON_SHARE * (self._n - PRIOR_DOCS) + COMMON_FLOOR))
        self._own_words = new.title | new.body
        self._own_bigrams = new.title_bigrams
        self.words: dict[int, float] = {}
        self.bigrams: dict[int, float] = {}
        # Candidate keys need every own word's IDF at once (bigrams wait until a headline pair is scored).
        own = list(self._own_words)
        self._store(self.words, own, freq.word_df(np.fromiter(own, np.uint32, len(own))), len(own))

    def fill_words(self, hashes: set[int]) -> None:
        self._fill(self.words, self._own_words, self._freq.word_df, np.uint32, hashes)

    def fill_bigrams(self, hashes: set[int]) -> None:
        self._fill(self.bigrams, self._own_bigrams, self._freq.bigram_df, np.uint16, hashes)

    def _fill(
        self,
        known: dict[int, float],
        own: set[int],
        df_of: Callable[[np.ndarray], np.ndarray],
        dtype: type,
        hashes: set[int],
    ) -> None:
        """IDF of the hashes not looked up yet, in one batch with the new article's own ones first.

        Set operations split the batch, not a Python test per hash (every scored pair asks for its words).
        """
        todo = hashes.difference(known)
        if not todo:
            return
        mine = todo & own
        batch = [*mine, *(todo - mine)] if mine else list(todo)
        self._store(known, batch, df_of(np.fromiter(batch, dtype, len(batch))), len(mine))

    def _store(self, known: dict[int, float], batch: list[int], df: np.ndarray, own: int) -> None:
        """Cache the IDF of ``batch`` from its window frequencies ``df``; the first ``own`` are the new article's."""
        if own:
            df[:own] += 1  # the new article's one occurrence, added in the counts' own float32
        known.update(zip(batch, np.log(self._n / (df + 1.0)).tolist(), strict=True))

    def rare(self, hashes: set[int]) -> list[int]:
        """The words of ``hashes`` (all looked up) not too frequent to point at a story, in set order.

        They are the candidate keys; a small index has no common words.
        """
        words, below = self.words, self._common_below
        return [h for h in hashes if not words[h] < below]


def common_df(docs: float) -> float:
    """The document frequency from which a word of the new article is common (``Rarity.rare`` in counts).

    Rare means an IDF of at least Rarity's threshold: log(n / (df + 1)) >= log(n / (COMMON_SHARE * (docs + 1)
    + COMMON_FLOOR)) with the new article counted in df, i.e. window df + 2 <= the value returned here.
    """
    return COMMON_SHARE * (docs + 1) + COMMON_FLOOR


def _cosine(a: set[int], b: set[int], w: dict[int, float]) -> float:
    if not a or not b:
        return 0.0
    shared = sum(w[k] ** 2 for k in a & b)
    if not shared:
        return 0.0
    return shared / math.sqrt(sum(w[k] ** 2 for k in a) * sum(w[k] ** 2 for k in b))


def _covered(part: set[int], whole: set[int], w: dict[int, float]) -> float:
    total = sum(w[k] for k in part)
    return sum(w[k] for k in part & whole) / total if total else 0.0


def pair_features(new: Features, other: Stored, rarity: Rarity, hours: float) -> list[float]:
    """Evidence that a headline/snippet item and an indexed one report the same event."""
    rarity.fill_words(other.title | other.body)
    rarity.fill_bigrams(new.title_bigrams | other.title_bigrams)
    w = rarity.words
    ct = _cosine(new.title, other.title, w)
    ctb = _cosine(new.title_bigrams, other.title_bigrams, rarity.bigrams)
    a = _covered(new.title, other.title | other.body, w)
    b = _covered(other.title, new.title | new.body, w)
    shared = sorted((w[k] for k in new.title & other.title), reverse=True)
    hours = abs(hours)
    return [
        1.0,
        ct,
        ctb,
        min(a, b),
        max(a, b),
        _cosine(new.body, other.body, w),
        (shared[0] if shared else 0.0) / 5,
        sum(shared[:2]) / 10,
        math.log1p(hours),
        max(0.0, hours - 24) / 24,
        float(new.outlet != 0 and new.outlet == other.outlet),
        float(new.has_body and other.has_body),
        ct * ctb,
    ]


def pair_logit(features: list[float], weights: tuple[float, ...] | None = None) -> float:
    """The pair score of ``features`` as a logit, capped to +-PAIR_LOGIT_CAP."""
    z = sum(w * x for w, x in zip(weights or WEIGHTS, features, strict=True))
    return max(-PAIR_LOGIT_CAP, min(PAIR_LOGIT_CAP, z))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


@dataclass(slots=True)
class StoryEvidence:
    """What the scored members of one candidate story say about the new article.

    ``near`` is about full texts: True when a member is a near-verbatim copy (the story is joined),
    False when full-text members were compared and none is (another article on the same topic:
    the story is never joined), None when no full text was compared.
    """

    pairs: list[list[float]] = field(default_factory=list)  # pair_features of each headline/snippet member
    words: set[int] = field(default_factory=set)  # headline and snippet words of those members
    first_t: float = math.inf  # earliest time among the scored members
    near: bool | None = None
    cover: float = 0.0  # set by finish(): share of the new headline's weight found in ``words``
    hours: float = 0.0  # set by finish(): hours from ``first_t`` to the new article

    def add(self, other: Stored, features: list[float]) -> None:
        self.pairs.append(features)
        self.words |= other.title | other.body
        self.first_t = min(self.first_t, other.t)

    def finish(self, new: Features, rarity: Rarity, t: float) -> None:
        rarity.fill_words(self.words)
        self.cover = _covered(new.title, self.words, rarity.words)
        self.hours = max(0.0, t - self.first_t) / 3600 if self.first_t < math.inf else 0.0


def story_features(ev: StoryEvidence, weights: tuple[float, ...] | None = None) -> list[float]:
    """Story-level evidence: best pair, agreement of several members, vocabulary cover, story age."""
    logits = sorted((pair_logit(f, weights) for f in ev.pairs), reverse=True)
    top = logits[:AGREE_K] + [-PAIR_LOGIT_CAP] * (AGREE_K - len(logits))
    return [1.0, logits[0] if logits else -PAIR_LOGIT_CAP, sum(top) / AGREE_K, ev.cover, math.log1p(ev.hours)]


def story_probability(ev: StoryEvidence) -> float:
    """Probability that the new article belongs to the story ``ev`` describes."""
    if ev.near is not None:
        return 1.0 if ev.near else 0.0
    return _sigmoid(sum(w * x for w, x in zip(STORY_WEIGHTS, story_features(ev), strict=True)))


def near_verbatim(size: int, other_size: int, other_inside: float) -> bool:
    """Whether two full texts are copies, from the share of the other's sketch found in the new text.

    The stored sketch is a sample of the other text's shingles, so ``other_inside`` estimates how
    much of the other text the new one contains; with both sizes that gives the shared part, hence
    also how much of the new text is inside the other and their resemblance (Jaccard).
    """
    shared = other_inside * other_size
    union = size + other_size - shared
    resemblance = shared / union if union > 0 else 0.0
    new_inside = shared / size if size else 0.0
    return resemblance >= NEAR_RESEMBLANCE or max(other_inside, new_inside) >= NEAR_CONTAINMENT


def same_outlet_headlines(new: Features, other_title: set[int], rarity: Rarity) -> bool:
    """One outlet's different articles share menus and footers; its copies also share a headline."""
    rarity.fill_words(other_title)
    return _cosine(new.title, other_title, rarity.words) >= SAME_OUTLET_TITLE


def is_roundup(title: str, outlet: str) -> bool:
    """Whether a headline marks a round-up, digest or opinion piece (a " - outlet" suffix is ignored)."""
    return ROUNDUP.search(strip_outlet(title, outlet)) is not None


def choose_story(evidence: dict[int, StoryEvidence], roundup: bool = False) -> int | None:
    """The story the article joins (the most probable one from JOIN_AT), or None for a new story.

    A round-up (``roundup``) names several events in a few words each: it joins only a story that
    carries its own headline or text, i.e. the same round-up reached us through another feed.
    """
    best, best_p = None, JOIN_AT
    for story, ev in evidence.items():
        if roundup and not ev.near and not any(pair[1] >= ROUNDUP_SAME_TITLE for pair in ev.pairs):
            continue
        p = story_probability(ev)
        if p >= best_p:
            best, best_p = story, p
    return best


def centroid(members: list[set[int]], idf: dict[int, float]) -> dict[int, float]:
    """A story's vocabulary: each rare word weighted by its IDF and the share of members using it."""
    counts: dict[int, int] = {}
    for words in members:
        for h in words:
            counts[h] = counts.get(h, 0) + 1
    n = len(members)
    return {h: c / n * idf[h] for h, c in counts.items() if idf[h] > MERGE_MIN_IDF}


def stories_similar(a: dict[int, float], b: dict[int, float]) -> float:
    """Cosine of two story centroids (see ``centroid``)."""
    if len(a) > len(b):
        a, b = b, a
    dot = sum(x * b.get(h, 0.0) for h, x in a.items())
    if not dot:
        return 0.0
    return dot / math.sqrt(sum(x * x for x in a.values()) * sum(x * x for x in b.values()))
