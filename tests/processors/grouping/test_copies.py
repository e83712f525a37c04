"""The copies that real outlets and aggregators make of one press release, and same-day look-alike events.

Fixtures come from tests/data/syndication/generate.py (``extended=True``): per base of bases.json, the
five newer kinds of copy (lead-trimmed, description, naver, google, partial) beside the six older ones,
and three pairs of bases that are different events published on one day with shared vocabulary.
Every test runs the real ``processors.grouping.Grouper``; when a join or a separation fails, the
message carries the texts and what the grouper weighed (``Grouper.explain``).
"""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from newsradar.events import Article
from processors.grouping import Grouper, decision
from processors.grouping.evidence import PAIR, STORY
from tests.processors.grouping.helpers import pairs_of, syndication_generator

ROOT = Path(__file__).resolve().parents[3]



gen = syndication_generator()
KEYS = gen.base_keys()
PAIRS = gen.same_day_pairs()


def _kinds(key: str) -> dict:
    """The copies of one base by kind, the newer kinds included."""
    return {c.kind: c for c in gen.by_key(key, extended=True)}


# --- diagnostics: what the grouper weighed ---------------------------------------------------------


def _show(article: Article) -> str:
    return f"[{article.id}] {article.outlet} {article.published_at:%Y-%m-%d %H:%M}\n  title: {article.title}\n  text: {article.text}"


def _why(grouper: Grouper, article: Article) -> str:
    """The evidence ``assign`` would weigh for ``article`` (call before assigning it): per candidate story
    its probability and STORY features, and the PAIR features of each member compared."""
    ev, ids = grouper.explain(article)
    if ev is None:
        return f"{article.id}: no candidate story"
    regime = decision.regime(ev)
    probs = decision.probabilities(ev)
    rows = decision.story_features(ev)
    lines = [f"{article.id}: regime {regime}, joins from {decision.JOIN_AT[regime]}"]
    for at, story in enumerate(ids):
        features = " ".join(f"{n}={v:.3f}" for n, v in zip(STORY[1:], rows[at][1:], strict=True))
        lines.append(f"  story {story}: p={probs[at]:.3f} {features}")
        for row in ev.of(at):
            lines.append("    member: " + " ".join(f"{n}={v:.3f}" for n, v in zip(PAIR[1:], row[1:], strict=True)))
    return "\n".join(lines)


def _joins(grouper: Grouper, article: Article, story: str, *context: Article) -> None:
    """Assign ``article`` and require it to land in ``story``, explaining why not otherwise."""
    why = _why(grouper, article)
    got = grouper.resolve(grouper.assign(article))
    assert got == grouper.resolve(story), (
        f"{article.id} started/joined {got}, not {story}\n"
        + "\n".join(_show(a) for a in (*context, article))
        + "\n"
        + why
    )


# --- the fixtures themselves: are they what the kind says? -------------------------------------------


def _words(text: str) -> set[str]:
    return set(re.findall(r"[가-힣]{2,}|[A-Za-z0-9]+", text))


@pytest.mark.parametrize("key", KEYS)
def test_new_kinds_look_like_what_they_stand_for(key: str) -> None:
    """Guards the fixture, not the grouper: each new kind has the shape the real case has (lengths,
    verbatim sentences, the aggregators' formats), so a grouping test below means what it says."""
    copies = _kinds(key)
    original = copies["original"].article
    base = next(b for b in gen._load()["bases"] if b["key"] == key)
    # lead-trimmed: the release's sentences 2 and 3, verbatim in the original, under an unrelated headline
    release = gen.short_release(base)
    lead_trimmed = copies["lead-trimmed"].article
    assert len(release) == 3 and lead_trimmed.text == " ".join(release[1:3])
    assert all(s in original.text for s in release[1:3]) and release[0] not in lead_trimmed.text
    assert 120 <= len(lead_trimmed.text) <= 300
    head_words = set().union(*(_words(h) for h in base["headlines"]))
    own = _words(base["own_headline"])
    assert len(own & head_words) <= 2 and len(own & head_words) / len(own) <= 0.25, own & head_words
    # description: the first two sentences (cut by some feeds) under the first headline
    description = copies["description"].article
    assert description.title == base["headlines"][0] and 100 <= len(description.text) <= 250
    flat = " ".join(original.text.split())
    assert flat.find(" ".join(description.text.removesuffix("...").split())) > 0
    # naver and google: one article of one outlet, minutes apart
    naver, google = copies["naver"].article, copies["google"].article
    assert naver.outlet == google.outlet and google.title == f"{naver.title} - {google.outlet}"
    assert google.text == f"{naver.title}\xa0\xa0{google.outlet}"
    assert naver.text.endswith("...") and 80 <= len(naver.text) <= 120
    assert abs(google.published_at - naver.published_at).total_seconds() <= 10 * 60
    # partial: two paragraphs verbatim, the outlet's own background around them
    partial = copies["partial"].article
    assert all(p in partial.text for p in base["paragraphs"][:2])
    assert 200 <= sum(map(len, base["background"])) <= 400


def test_partial_copies_share_30_to_60_percent_of_their_shingles() -> None:
    """A partial rewrite (half the text kept verbatim, half the outlet's own) measured as the issue does:
    5-character shingles of letters and digits, shared over the smaller set."""
    shares = gen.partial_shares()
    print("partial copy shingle share per base:", {k: round(v, 3) for k, v in shares.items()})
    assert set(shares) == set(KEYS)
    assert all(0.3 <= share <= 0.6 for share in shares.values()), shares


def test_older_kinds_are_generated_as_before() -> None:
    """The extended set only adds: the six older kinds and the same-outlet pair are unchanged."""
    older = gen.syndication_set()
    extended = {c.article.id: c for c in gen.syndication_set(extended=True)}
    assert {c.kind for c in older} == {*gen.KINDS, "same-outlet"}
    assert all(extended[c.article.id] == c for c in older)
    assert Counter(c.kind for c in extended.values()) == Counter(
        {**{k: len(KEYS) for k in (*gen.KINDS, *gen.NEW_KINDS)}, "same-outlet": 2}
    )


# --- each new kind joins its original -----------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS)
def test_rss_description_joins_its_original(key: str) -> None:
    """An RSS item: the release's first headline and the article's first two sentences, whole or cut by
    the feed with "..."; the collector sees it apart from the full article it summarises."""
    copies = _kinds(key)
    grouper = Grouper()
    story = grouper.assign(copies["original"].article)
    _joins(grouper, copies["description"].article, story, copies["original"].article)


@pytest.mark.parametrize("key", KEYS)
def test_naver_and_google_entries_arriving_before_the_full_text_end_in_its_story(key: str) -> None:
    """The aggregators often list an article before any full text is fetched: the Naver entry starts a
    story, the Google entry (same headline, same outlet) joins it, and the original then joins that story
    through the Naver snippet it contains (its own headline differs)."""
    copies = _kinds(key)
    grouper = Grouper()
    naver, google, original = copies["naver"].article, copies["google"].article, copies["original"].article
    story = grouper.assign(naver)
    _joins(grouper, google, story, naver)
    _joins(grouper, original, story, naver, google)


def _joined(key: str, kind: str) -> bool:
    """Whether the copy of ``kind`` of base ``key`` lands in its original's story (the original first; a
    Google entry after its Naver entry, as they arrive)."""
    copies = _kinds(key)
    grouper = Grouper()
    story = grouper.assign(copies["original"].article)
    if kind == "google":
        grouper.assign(copies["naver"].article)
    return grouper.resolve(grouper.assign(copies[kind].article)) == grouper.resolve(story)


# How many of the 17 bases' copies of each kind join their original now. A lead-trimmed copy and a Naver
# snippet lie whole inside their original: the copy rule (decision.copy_of, passages.py) joins every one of
# them, and a Google entry (the headline only) follows its Naver entry. A partial copy (two paragraphs of
# the release inside the outlet's own context) holds less than the rule's share and must convince the
# fitted models, where such copies are rare. A drop below is a regression; the README's grouping section
# says where each kind stands and why.
KIND_FLOORS = {"lead-trimmed": len(KEYS), "naver": len(KEYS), "google": len(KEYS), "partial": 12}


@pytest.mark.parametrize("kind", sorted(KIND_FLOORS))
def test_harder_copies_join_their_original_at_least_as_often_as_measured(kind: str) -> None:
    """lead-trimmed: a three-sentence release without its first sentence, under a headline of the
    outlet's own (two sentences verbatim in the original). naver and google: one outlet's article as
    the two aggregators list it minutes apart (a cut snippet of the lead; the headline only). partial:
    the release's first two paragraphs verbatim, the outlet's own context around them."""
    joined = [key for key in KEYS if _joined(key, kind)]
    print(f"{kind}: {len(joined)}/{len(KEYS)} join their original; apart: {sorted(set(KEYS) - set(joined))}")
    assert len(joined) >= KIND_FLOORS[kind], sorted(set(KEYS) - set(joined))


# --- same day, same vocabulary, different events --------------------------------------------------------


def _orders(first: list, second: list) -> dict[str, list]:
    """Arrival orders of two events' copies: by time, reversed, one event first, shuffled."""
    by_time = sorted(first + second, key=lambda c: (c.article.published_at, c.article.id))
    shuffled = {}
    for seed in (1, 2, 3):
        order = list(by_time)
        random.Random(seed).shuffle(order)
        shuffled[f"shuffled-{seed}"] = order
    return {
        "by-time": by_time,
        "reversed": by_time[::-1],
        "first-event-first": first + second,
        "second-event-first": second + first,
        "interleaved-by-kind": [c for pair in itertools.zip_longest(first, second) for c in pair if c is not None],
        **shuffled,
    }


ORDER_NAMES = ("by-time", "reversed", "first-event-first", "second-event-first", "interleaved-by-kind",
               "shuffled-1", "shuffled-2", "shuffled-3")  # fmt: skip


def _stories_of(copies: list, grouper: Grouper | None = None) -> tuple[list[str], Grouper, dict[str, str]]:
    """Each copy's story as it ends up (merges resolved), the grouper, and the evidence seen per article."""
    grouper = grouper or Grouper()
    why, pred = {}, []
    for c in copies:
        why[c.article.id] = _why(grouper, c.article)
        pred.append(grouper.assign(c.article))
    return [grouper.resolve(p) for p in pred], grouper, why


def _cross_event_merges(copies: list, pred: list[str]) -> dict[str, list]:
    by_story: dict[str, list] = defaultdict(list)
    for c, story in zip(copies, pred, strict=True):
        by_story[story].append(c)
    return {story: members for story, members in by_story.items() if len({c.event for c in members}) > 1}


def _merge_report(merged: dict[str, list], why: dict[str, str]) -> str:
    out = []
    for story, members in merged.items():
        out.append(f"story {story} holds {sorted({c.event for c in members})}:")
        for c in members:
            out.append(f"  {c.kind:12} " + _show(c.article).replace("\n", "\n    "))
            out.append("    " + why[c.article.id].replace("\n", "\n    "))
    return "\n".join(out)


@pytest.mark.parametrize("order", ORDER_NAMES)
@pytest.mark.parametrize("pair", PAIRS, ids=["-vs-".join(p) for p in PAIRS])
def test_same_day_different_events_stay_apart_in_any_order(pair: tuple[str, str], order: str) -> None:
    """Two companies' quarterly earnings on one afternoon, two companies' sustainability reports on one
    morning, a customs crackdown on battery-equipment exports and a recycling plant opening in the same
    city on one day: every copy of both, in several orders of arrival; no story may hold both events."""
    first, second = (gen.by_key(key, extended=True) for key in pair)
    copies = _orders(first, second)[order]
    pred, _, why = _stories_of(copies)
    merged = _cross_event_merges(copies, pred)
    assert not merged, _merge_report(merged, why)


# --- the whole extended set ----------------------------------------------------------------------------


def score(gold: list[str], pred: list[str]) -> dict[str, float]:
    """Pairwise precision and recall of a predicted partition against the gold one."""
    gp, pp = pairs_of(gold), pairs_of(pred)
    return {
        "pair_precision": len(gp & pp) / len(pp) if pp else 1.0,
        "pair_recall": len(gp & pp) / len(gp) if gp else 1.0,
    }


def test_scorer_on_a_known_partition() -> None:
    s = score(["a", "a", "a", "b", "b", "c"], ["x", "x", "y", "y", "y", "z"])
    assert s == {"pair_precision": pytest.approx(2 / 4), "pair_recall": pytest.approx(2 / 4)}


def test_extended_syndication_set_recall_and_no_cross_event_merges() -> None:
    """The day's stream as the collectors deliver it: every kind of copy of every base (older and newer
    kinds, the same-outlet pair, the same-day look-alikes) in publication order. Not one story holding
    two events (keeping look-alikes apart must not come from refusing to group: pairwise recall stays
    at least 0.89, where it stands now; 0.98 on the six older kinds alone)."""
    copies = gen.syndication_set(extended=True)
    assert len({c.event for c in copies}) == len(KEYS) and len(copies) == 11 * len(KEYS) + 2
    pred, _, why = _stories_of(copies)
    merged = _cross_event_merges(copies, pred)
    assert not merged, _merge_report(merged, why)
    gold = [c.event for c in copies]
    s = score(gold, pred)
    if s["pair_recall"] < 0.89:
        split = []
        for event in sorted(set(gold)):
            stories = Counter(p for c, p in zip(copies, pred, strict=True) if c.event == event)
            if len(stories) > 1:
                main = stories.most_common(1)[0][0]
                split += [f"{c.article.id} -> {p} (main {main})\n  {why[c.article.id]}"
                          for c, p in zip(copies, pred, strict=True) if c.event == event and p != main]  # fmt: skip
        pytest.fail(f"pairwise recall {s['pair_recall']:.3f} < 0.89\n" + "\n".join(split))
