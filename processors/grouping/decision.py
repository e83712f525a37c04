"""The one place where evidence becomes a decision: the weights, the thresholds, and where they come from.

Two logistic models, fitted by ``bench/fit_grouping.py`` on the labelled dev sets (headlines and
snippets: ../shared/corpus/battery_news/dev.jsonl; full texts: ../shared/corpus/fulltext_news/dev.jsonl),
both sets at once so that one model serves every kind of article:

1. the **pair** model scores each candidate member (evidence.PAIR);
2. the **story** model turns what a candidate story's members say together (evidence.STORY, with
   the pair scores as logits) into the probability that the new article belongs to it. For a long
   text, a story of one member is that member: its probability is the pair model's (two texts say
   enough about each other; the story features would only add "one member"), and the story model
   of long texts is fitted on stories of two or more members. A headline or snippet says too little
   on its own: its story model scores every story.

The article joins the most probable story from ``JOIN_AT`` (a long text joining a story of one
member: from ``SINGLE_JOIN_AT``); else it starts a new one. Every constant
below that was chosen by looking at dev errors counts as fitted: the figures that count are the
cross-validated ones printed by the fit script (grouped k-fold and time split), quoted in the README.

Three rules come from the story policy, not from a fit. A text that lies almost whole, verbatim, inside
an article of another outlet (or holds almost all of one) is a copy of it (``copy_of``, from
``VERBATIM_AT``; passages.py measures it): the models weigh copies among same-topic texts of similar
length, where a shared passage is one signal among several, and on the dev sets they never meet the
short copy of a long text that outlets and feeds make every day (a lead without its first sentence,
an RSS description, a search snippet). A round-up, digest or opinion piece joins only
the story of its own copy (the same headline through another feed), and no report joins a round-up's
story. And one event is often told from several angles at once (a ministry's announcement with each
region's local version): stories that began within ``MERGE_HOURS`` of each other are merged when a
headline or snippet shows their vocabularies agree (``merges``).
"""

from __future__ import annotations

import math
import operator

import numpy as np

from processors.grouping import native
from processors.grouping.evidence import PAIR, STORY, Evidence

# fmt: off
# Weights of the pair and story models for a new article that is a headline or snippet ("short") and for one
# that is a long text ("long"), in the order of evidence.PAIR and evidence.STORY.
WEIGHTS = {
    "short": ((-0.993, -6.705, 3.806, 15.377, 4.355, 4.51, 0.794, 0.715, 1.615, 0.287, -2.634, -1.234, -2.325),
              (-2.834, 0.389, 0.287, 1.562, 7.875, -0.795, 0.26, 0.762)),
    "long": ((-4.329, -0.627, 0.0, 4.247, 3.297, 5.001, 1.647, 3.796, 0.766, -0.605, -1.465, -1.188, -2.275),
             (-2.453, 0.309, 0.286, 1.516, 11.972, -0.485, -0.464, 1.304)),
}
# fmt: on
JOIN_AT = {"short": 0.5, "long": 0.6}  # story probability from which the new article joins the story
SINGLE_JOIN_AT = 0.85  # pair probability from which a long text joins a story of one member
PAIR_LOGIT_CAP = 8.0  # pair scores are compared as logits within +-8 (a near-certain pair is just that)
AGREE_K = 3  # story feature "top3": mean pair logit of this many best members (missing ones count as -8)
ROUNDUP_SAME_HEAD = 0.8  # headline cosine from which a round-up is the same round-up through another feed
# Story merging: cosine of the two stories' centroids from which they are one event, the most hours
# between their first members, and the articles the window must hold (in a young index every word looks rare).
MERGE_AT, MERGE_HOURS, MERGE_MIN_DOCS = 0.12, 3.0, 200
VERBATIM_AT = 0.9  # share of one text inside the other from which it is a copy (a policy, not fitted: README)
assert all(len(pair) == len(PAIR) and len(story) == len(STORY) for pair, story in WEIGHTS.values())


def regime(ev: Evidence) -> str:
    """Which model weighs this evidence: "long" for a new article with a long text, else "short"."""
    return "long" if ev.long else "short"


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1.0 - 1e-12)
    return math.log(p / (1.0 - p))


def pair_logits(pairs: np.ndarray, weights: tuple[float, ...]) -> np.ndarray:
    """The pair score of each row of PAIR features, as a logit within +-PAIR_LOGIT_CAP."""
    # An elementwise product, not a matrix product: BLAS would wake its threads for a dozen rows.
    return np.clip((pairs * np.asarray(weights)).sum(axis=1), -PAIR_LOGIT_CAP, PAIR_LOGIT_CAP)  # type: ignore[no-any-return]


def story_rows(ev: Evidence, weights: tuple[float, ...] | None = None) -> list[tuple[float, ...]]:
    """The STORY features of each candidate story, with pair scores by ``weights`` (by default the pair
    weights of the evidence's regime). A few stories of a few members each: plain Python beats numpy here."""
    logits = pair_logits(ev.pairs, weights or WEIGHTS[regime(ev)][0]).tolist()
    owner = ev.owner.tolist()
    # Members come story by story: each story's logits are one slice.
    ends = [i + 1 for i in range(len(owner) - 1) if owner[i] != owner[i + 1]] + [len(owner)]
    starts = [0, *ends[:-1]]
    rows: list[tuple[float, ...]] = []
    missing = [-PAIR_LOGIT_CAP] * AGREE_K
    signals = zip(ev.cover.tolist(), ev.centroid(), ev.age_hours.tolist(), ev.size.tolist(), strict=True)
    for start, end, (cover, centroid, age, size) in zip(starts, ends, signals, strict=True):
        mine = sorted(logits[start:end], reverse=True)
        top = (mine + missing)[:AGREE_K]
        agree = len(mine) - sum(z <= 0 for z in mine)
        rows.append((1.0, top[0], sum(top) / AGREE_K, cover, centroid, math.log1p(age), math.log(max(size, 1.0)),
                     agree / len(mine)))  # fmt: skip
    return rows


def story_features(ev: Evidence, weights: tuple[float, ...] | None = None) -> np.ndarray:
    """``story_rows`` as a matrix (for the fit)."""
    return np.array(story_rows(ev, weights), dtype=np.float64).reshape(len(ev.stories), len(STORY))


def probabilities(ev: Evidence) -> list[float]:
    """Probability that the new article belongs to each candidate story (by the compiled core when it is built)."""
    pair_w, story_w = WEIGHTS[regime(ev)]
    core = native.active()
    if core is None:
        return [_sigmoid(row[1] if ev.long and size <= 1 else sum(map(operator.mul, story_w, row)))
                for row, size in zip(story_rows(ev), ev.size.tolist(), strict=True)]  # fmt: skip
    return np.frombuffer(core.probabilities(ev.pairs, ev.owner, ev.cover, ev.mine_dots, ev.gram, ev.mine_norm2,  # type: ignore[no-any-return]
                                            ev.age_hours, ev.size, pair_w, story_w, PAIR_LOGIT_CAP, AGREE_K,
                                            ev.long), native.F64).tolist()  # fmt: skip


def choose(ev: Evidence, roundup: bool, closed: set[int]) -> int | None:
    """The position in ``ev.stories`` of the story the article joins, or None for a new story.

    ``closed`` holds the positions of the round-ups' stories. A round-up joins only a story carrying its
    own headline; a report never joins a round-up's story. Stories are ranked by how far their
    probability clears their own threshold (as logits: a long text has its own for a story of one).
    """
    p = probabilities(ev)
    if roundup:
        same = set(ev.owner[ev.pairs[:, PAIR.index("head_cos")] >= ROUNDUP_SAME_HEAD].tolist())
        p = [x if story in same else 0.0 for story, x in enumerate(p)]
    elif closed:
        p = [0.0 if story in closed else x for story, x in enumerate(p)]
    join_at = JOIN_AT[regime(ev)]
    bars = [SINGLE_JOIN_AT if ev.long and size <= 1 else join_at for size in ev.size.tolist()]
    passing = [story for story, (x, bar) in enumerate(zip(p, bars, strict=True)) if x >= bar]
    if not passing:
        return None
    return max(passing, key=lambda story: _logit(p[story]) - _logit(bars[story]))


def copy_of(ev: Evidence, verbatim: np.ndarray, closed: set[int]) -> int | None:
    """The position of the story with the member that the article copies verbatim, if any (``verbatim``:
    passages.containment per row of ``ev.pairs``); None when no member of another outlet reaches VERBATIM_AT.

    Asked only when ``choose`` found no story (a round-up is never asked): the story that the article shares
    the most text with, round-ups' stories (``closed``) aside. One outlet's repeat is left to the models.
    """
    other = ev.pairs[:, PAIR.index("same_outlet")] == 0
    hit = np.flatnonzero((verbatim >= VERBATIM_AT) & other)
    best: tuple[float, int] | None = None
    for row in hit.tolist():
        story = int(ev.owner[row])
        if story not in closed and (best is None or verbatim[row] > best[0]):
            best = (float(verbatim[row]), story)
    return None if best is None else best[1]


def _disagree(ev: Evidence) -> set[int]:
    """The stories with a member that names another actor first than the article (evidence.subject_conflict)."""
    return set(ev.owner[ev.pairs[:, PAIR.index("subject_conflict")] > 0].tolist())


def merges(ev: Evidence, chosen: int | None, first: list[float], t: float, closed: set[int]) -> list[int]:
    """The candidate stories that a headline or snippet shows to be one event with the story it lands in.

    Compared: the landed story with the article in it (or the article alone, if it starts one) against
    each other candidate story that began within MERGE_HOURS of it, by the cosine of their centroids;
    two single articles are never merged (that is the join model's call), nor stories where a member
    names another actor than the article. Returns positions in ``ev.stories``.
    """
    members = np.bincount(ev.owner, minlength=len(ev.stories)).tolist()
    gram, dots = ev.gram, ev.mine_dots.tolist()
    if chosen is None:
        size, began, products, norm2 = 1.0, t, dots, ev.mine_norm2
    else:
        k = members[chosen]
        size, began = k + 1.0, min(first[chosen], t)
        # The landed story's centroid with the article in it: (k * centroid + article) / (k + 1).
        products = [(k * g + d) / size for g, d in zip(gram[chosen].tolist(), dots, strict=True)]
        norm2 = (k * k * gram[chosen, chosen] + 2 * k * dots[chosen] + ev.mine_norm2) / (size * size)
    vetoed = closed | _disagree(ev)
    out = []
    for story, (product, own, count, began_at) in enumerate(zip(products, np.diag(gram).tolist(), members, first,
                                                                strict=True)):  # fmt: skip
        if story == chosen or story in vetoed or abs(began_at - began) > MERGE_HOURS * 3600:
            continue
        if max(count, size) >= 2 and product > 0 and product / math.sqrt(norm2 * own) >= MERGE_AT:
            out.append(story)
    return out
