"""Korean-aware watchlist matching: particles, spacing, numerals, hanja, English and jamo-level typos.

Every alias becomes a branch of one compiled regex (a few for long watchlists), so the
common work (exact forms, spacing inside Hangul, case and width, Latin glued to digits,
terms inside longer words) runs in C in one pass over the text as given, and spans
need no mapping. Longer Hangul terms also get "one syllable wildcarded" branches whose
hits are verified by a jamo-level Levenshtein distance; two-syllable terms never do,
so 포항 can never become 포함.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rapidfuzz.distance import Levenshtein

from newsradar.errors import ConfigError
from newsradar.events import Match
from newsradar.settings import RuleSettings, TermSettings, WatchlistSettings
from processors.normalize import (
    alias_key,
    compile_plain,
    exact_alternatives,
    fold_with_map,
    fuzzy_alternatives,
    is_hangul_word,
    overlap_offsets,
    strip_gaps,
    to_jamo,
)
from processors.rules import check_rules, make_snippet, rules_matched

log = logging.getLogger(__name__)

_FUZZY_CACHE_MAX = 20_000


@dataclass
class _Branch:
    """One alternative of a compiled regex: an alias key, or a fuzzy variant of one."""

    key: str
    owners: tuple[tuple[int, str], ...]  # (term index, alias as configured)
    spellings: list[str] = field(default_factory=list)  # configured forms with this key
    fuzzy: bool = False
    back: int = 0  # fuzzy: syllables before the regex match start (checked by a lookbehind)
    jamo: str = ""
    tolerance: int = 0
    solo: re.Pattern[str] | None = None  # this alias alone, for overlap checks
    overlaps: list[tuple[_Branch, list[int]]] = field(default_factory=list)
    simple: bool = False  # a hit needs no extra work: exact, one term, no overlaps


_Hit = tuple[int, int, int, str, float]  # start, end, term index, alias, score
_Alternative = tuple[tuple[int, int], str, _Branch]  # (sort key, regex rest, branch)
# A compiled regex, its branches by marker group, and for each branch whose hits need no
# further work (exact, one term, no overlaps) its (term index, alias).
_Compiled = tuple[re.Pattern[str], list[_Branch], list[tuple[int, str] | None]]
# First characters per compiled regex. A position whose character opens some branch
# costs a scan of every opening character of its regex, so long watchlists are split
# into several regexes (one C pass each) rather than one that is slow at every such position.
_GROUPS_PER_REGEX = 40


def _match_maker() -> Callable[[str, str, int, int, float, str], Match]:
    """A fast way to build Match objects, or the plain constructor where that is not safe.

    A frozen dataclass's __init__ sets each field through object.__setattr__ (about
    2.4 µs for Match); on an article with ten hits that is a third of the matching
    budget. While Match is a plain frozen dataclass with exactly these fields (no
    slots, no __post_init__; a test checks the two ways agree) its instance dict is
    filled directly, which gives an equal, equally frozen object in a quarter of the time.
    """
    fields = tuple(f.name for f in dataclasses.fields(Match))
    plain = not hasattr(Match, "__slots__") and not hasattr(Match, "__post_init__")
    if fields != ("term", "surface", "start", "end", "score", "alias") or not plain:
        return Match
    new = object.__new__

    def make(term: str, surface: str, start: int, end: int, score: float, alias: str) -> Match:
        match = new(Match)
        state = match.__dict__
        state["term"] = term
        state["surface"] = surface
        state["start"] = start
        state["end"] = end
        state["score"] = score
        state["alias"] = alias
        return match

    return make


_make_match = _match_maker()


def effective_tolerance(key: str, configured: int | None) -> int:
    """Jamo-level edits allowed for a Hangul alias of ``len(key)`` syllables.

    Default: two syllables exact (포항 must never take 포함), three or more one slip.
    A configured value is capped at 1 below five syllables and at 2 above, because
    two slips in a four-syllable word already reach everyday words (이차전지/기차전기).
    """
    syllables = len(key)
    if syllables <= 2:
        return 0
    cap = 1 if syllables <= 4 else 2
    return min(cap, 1 if configured is None else configured)


class Matcher:
    """Finds watchlist terms in an article's document and explains every hit."""

    def __init__(self, terms: Sequence[TermSettings], rules: Sequence[RuleSettings] = ()) -> None:
        """Compile the watchlist; raises ConfigError naming the offending term, alias or rule."""
        self._terms = list(terms)
        self._rules = list(rules)
        self._check_terms()
        check_rules(self._rules, [t.name for t in self._terms])
        self._names = [t.name for t in self._terms]
        exact = self._exact_branches()
        self._link_overlaps(exact)
        groups: dict[str, list[_Alternative]] = {}
        for branch in exact:
            alternatives = [alt for spelling in branch.spellings for alt in exact_alternatives(spelling)]
            for first, rest in dict.fromkeys(alternatives):
                groups.setdefault(first, []).append(((0, -len(branch.key)), rest, branch))
        for first, rest, branch in self._fuzzy_branches(frozenset(groups)):
            groups.setdefault(first, []).append(((1, -len(branch.key)), rest, branch))
        self._regexes = self._compile(groups)
        self._exclusions = {i: compile_plain(t.exclude) for i, t in enumerate(self._terms) if t.exclude}
        self._fuzzy_cache: dict[tuple[str, str], float | None] = {}

    @classmethod
    def from_settings(cls, watchlist: WatchlistSettings) -> Matcher:
        """Build the matcher for ``watchlist`` (called once at start-up); raises ConfigError."""
        return cls(watchlist.terms, watchlist.rules)

    # --- building -----------------------------------------------------------------

    def _check_terms(self) -> None:
        if not self._terms:
            raise ConfigError("watchlist.terms: the watchlist is empty; expected at least one term")
        seen: set[str] = set()
        for i, term in enumerate(self._terms):
            if term.name in seen:
                raise ConfigError(f"watchlist.terms[{i}].name: term {term.name!r} is listed twice")
            seen.add(term.name)
            for j, alias in enumerate([term.name, *term.aliases]):
                if not alias_key(alias):
                    where = "name" if j == 0 else f"aliases[{j - 1}]"
                    raise ConfigError(f"watchlist.terms[{i}].{where}: alias {alias!r} is blank")

    def _exact_branches(self) -> list[_Branch]:
        by_key: dict[str, _Branch] = {}
        for i, term in enumerate(self._terms):
            for alias in dict.fromkeys([term.name, *term.aliases]):
                key = alias_key(alias)
                branch = by_key.setdefault(key, _Branch(key=key, owners=()))
                if alias not in branch.spellings:
                    branch.spellings.append(alias)  # "Samsung SDI" and "SamsungSDI" match differently
                if any(owner == i for owner, _ in branch.owners):
                    continue  # two spellings of one alias in one term: the first one names it
                if branch.owners:
                    log.warning("watchlist: alias %r is listed under both %r and %r; it counts for both",
                                alias, self._names[branch.owners[0][0]], term.name)
                branch.owners = (*branch.owners, (i, alias))
        return list(by_key.values())

    def _fuzzy_branches(self, openers: frozenset[str]) -> list[tuple[str, str, _Branch]]:
        """(first literal, regex rest, branch) for each wildcard variant of each long Hangul alias."""
        out: list[tuple[str, str, _Branch]] = []
        for i, term in enumerate(self._terms):
            for alias in dict.fromkeys([term.name, *term.aliases]):
                key = alias_key(alias)
                if not is_hangul_word(key):
                    continue
                tolerance = effective_tolerance(key, term.tolerance)
                if term.tolerance is not None and tolerance < term.tolerance:
                    log.warning("watchlist: term %r alias %r: tolerance %d lowered to %d for a %d-syllable "
                                "Hangul word (more would confuse it with everyday words, e.g. 포항/포함)",
                                term.name, alias, term.tolerance, tolerance, len(key))
                for first, rest, back in fuzzy_alternatives(key, tolerance, openers):
                    branch = _Branch(key=key, owners=((i, alias),), fuzzy=True, back=back,
                                     jamo=to_jamo(key), tolerance=tolerance)
                    out.append((first, rest, branch))
        return out

    @staticmethod
    def _compile(groups: dict[str, list[_Alternative]]) -> list[_Compiled]:
        """Regexes whose every top-level branch opens with a literal character.

        That lets the regex engine skip, in C, every position whose character opens
        no alias. Each alternative ends in an empty marker group, so ``m.lastindex``
        names the branch that matched without wrapping branches in groups. The exact
        and fuzzy branches of one alias share a regex, so an exact hit consumes its
        text before a fuzzy branch of the same alias can see it.
        """
        count = max(1, min(8, round(len(groups) / _GROUPS_PER_REGEX)))
        buckets = _bucket_by_key(groups, count)
        parts: list[list[str]] = [[] for _ in range(count)]
        tables: list[list[_Branch]] = [[_Branch(key="", owners=())] for _ in range(count)]  # group 0
        for first, alternatives in groups.items():
            alternatives.sort(key=lambda a: a[0])  # exact before fuzzy, longer before shorter
            inner = []
            for _, rest, branch in alternatives:
                inner.append(rest + "()")
                tables[buckets[first]].append(branch)
            parts[buckets[first]].append(re.escape(first) + "(?:" + "|".join(inner) + ")")
        return [
            (re.compile("|".join(p)), table, [_simple(b) for b in table])
            for p, table in zip(parts, tables, strict=True)
            if p
        ]

    def _link_overlaps(self, exact: list[_Branch]) -> None:
        """Remember, for each alias, the other terms' aliases that can overlap one of its hits.

        A regex pass reports non-overlapping hits, so 포항제철소 (one term) would
        hide 포항 (another term) inside it; such pairs are re-checked at the hit.
        """
        for a in exact:
            terms_a = {i for i, _ in a.owners}
            for b in exact:
                if b is a or terms_a >= {i for i, _ in b.owners}:
                    continue
                offsets = overlap_offsets(a.key, b.key)
                if offsets:
                    if b.solo is None:
                        b.solo = compile_plain(b.spellings)
                    a.overlaps.append((b, offsets))
            if len(a.owners) == 1 and not a.overlaps:
                a.simple = True

    # --- matching -----------------------------------------------------------------

    def find(self, text: str) -> list[Match]:
        """Every watchlist hit in ``text`` (an article's document), sorted by start.

        Spans index the text exactly as given, even where it had to be normalised
        (decomposed Hangul, compatibility ideographs such as 李 U+F9E1). A
        non-string is logged and yields no matches rather than stopping the pipeline.
        """
        names = self._names
        make = _make_match
        return [make(names[t], text[s:e], s, e, sc, a) for s, e, t, a, sc in self._scan(text)]

    def terms(self, text: str) -> list[str]:
        """Canonical names of the terms found in ``text``, sorted."""
        names = self._names
        return sorted({names[hit[2]] for hit in self._scan(text)})

    def _scan(self, text: str) -> list[_Hit]:
        """Hits in ``text`` coordinates, sorted by (start, end, term), exclusions applied."""
        if not isinstance(text, str):
            log.error("matcher: expected the article document as str, got %s; no matches", type(text).__name__)
            return []
        if unicodedata.is_normalized("NFC", text):
            hits, ordered = self._hits(text)
        else:
            folded, starts, ends = fold_with_map(text)
            hits, ordered = self._hits(folded)
            hits = [(starts[s], ends[e - 1], t, a, sc) for s, e, t, a, sc in hits]
        if not ordered:
            hits = sorted(set(hits), key=lambda h: (h[0], h[1], h[2]))
            if any(h[4] < 100.0 for h in hits):
                hits = _drop_shadowed(hits)
        return hits

    def _hits(self, text: str) -> tuple[list[_Hit], bool]:
        hits: list[_Hit] = []
        ordered = len(self._regexes) == 1
        for regex, branches, simple in self._regexes:
            ordered &= self._run(regex, branches, simple, text, 0, len(text), hits)
        if self._exclusions and hits:
            hits = self._drop_excluded(text, hits)
        return hits, ordered

    def _run(self, regex: re.Pattern[str], branches: list[_Branch], simple: list[tuple[int, str] | None],
             text: str, pos: int, stop: int, hits: list[_Hit]) -> bool:
        """Append the hits of one regex starting in [pos, stop); False if any came out of order."""
        ordered = True
        for m in regex.finditer(text, pos):
            start, end = m.span()
            if start >= stop:
                break
            index = m.lastindex or 0
            owner = simple[index]
            if owner is not None:  # the common case: exact, one term, no overlaps
                hits.append((start, end, owner[0], owner[1], 100.0))
                continue
            branch = branches[index]
            ordered = False
            score = 100.0
            if branch.fuzzy:
                verified = self._verify(text[start - branch.back:end], branch)
                if verified is None:
                    # The rejected candidate consumed text in which a real hit may start.
                    self._run(regex, branches, simple, text, start + 1, end, hits)
                    continue
                start, score = start - branch.back, verified
            hits.extend((start, end, term, alias, score) for term, alias in branch.owners)
            if branch.overlaps:
                self._overlapping(text, start, end, branch, hits)
        return ordered

    def _verify(self, window: str, branch: _Branch) -> float | None:
        """Score a fuzzy candidate window, or None when it is more than the tolerance away."""
        cache_key = (window, branch.jamo)
        if cache_key in self._fuzzy_cache:
            return self._fuzzy_cache[cache_key]
        if len(self._fuzzy_cache) >= _FUZZY_CACHE_MAX:
            self._fuzzy_cache.clear()
        jamo = to_jamo(strip_gaps(window))
        distance = Levenshtein.distance(jamo, branch.jamo, score_cutoff=branch.tolerance)
        score: float | None = None
        if distance <= branch.tolerance:
            score = round(Levenshtein.normalized_similarity(jamo, branch.jamo) * 100, 1)
        self._fuzzy_cache[cache_key] = score
        return score

    @staticmethod
    def _overlapping(text: str, start: int, end: int, branch: _Branch, hits: list[_Hit]) -> None:
        exact_form = end - start == len(branch.key)  # no spacing inside: offsets in the key hold
        for other, offsets in branch.overlaps:
            assert other.solo is not None
            for pos in ([start + i for i in offsets] if exact_form else range(start, end)):
                m = other.solo.match(text, pos)
                if m is not None:
                    hits.extend((m.start(), m.end(), term, alias, 100.0) for term, alias in other.owners)

    def _drop_excluded(self, text: str, hits: list[_Hit]) -> list[_Hit]:
        spans: dict[int, list[tuple[int, int]]] = {}
        for term in {h[2] for h in hits} & self._exclusions.keys():
            spans[term] = [m.span() for m in self._exclusions[term].finditer(text)]
        # A hit that overlaps a phrase the watchlist says is not this term is part of that phrase.
        return [h for h in hits if not any(s < h[1] and h[0] < e for s, e in spans.get(h[2], ()))]

    # --- presentation and routing -------------------------------------------------

    def snippet(self, text: str, matches: Sequence[Match], width: int = 160) -> tuple[str, list[tuple[int, int]]]:
        """A ~``width``-char excerpt around the first match, and the spans of matches inside it.

        The first match in the body is preferred over one in the title (notifiers
        show the title anyway). Cuts fall at word boundaries and are marked "…";
        whitespace runs become one space. Spans index the returned snippet.
        """
        return make_snippet(text, matches, width)

    def rules_matched(self, terms: Sequence[str]) -> list[RuleSettings]:
        """The watchlist rules (config order) satisfied by these canonical terms."""
        return rules_matched(self._rules, terms)


def _simple(branch: _Branch) -> tuple[int, str] | None:
    return branch.owners[0] if branch.simple else None


def _bucket_by_key(groups: dict[str, list[_Alternative]], count: int) -> dict[str, int]:
    """Assign each opening character to one of ``count`` regexes, keeping each alias's branches together."""
    parent = {first: first for first in groups}

    def root(first: str) -> str:
        while parent[first] != first:
            parent[first] = parent[parent[first]]
            first = parent[first]
        return first

    by_key: dict[str, str] = {}
    for first, alternatives in groups.items():
        for _, _, branch in alternatives:
            other = by_key.setdefault(branch.key, first)
            parent[root(first)] = root(other)
    components: dict[str, list[str]] = {}
    for first in groups:
        components.setdefault(root(first), []).append(first)
    def size(members: list[str]) -> int:
        return sum(len(groups[first]) for first in members)

    load = [0] * count
    buckets: dict[str, int] = {}
    for members in sorted(components.values(), key=size, reverse=True):
        target = load.index(min(load))
        load[target] += size(members)
        buckets.update(dict.fromkeys(members, target))
    return buckets


def _drop_shadowed(hits: list[_Hit]) -> list[_Hit]:
    """Drop fuzzy hits that overlap an exact hit of the same term (one occurrence, one match)."""
    exact: dict[int, list[tuple[int, int]]] = {}
    for s, e, term, _, score in hits:
        if score >= 100.0:
            exact.setdefault(term, []).append((s, e))
    return [h for h in hits
            if h[4] >= 100.0 or not any(s < h[1] and h[0] < e for s, e in exact.get(h[2], ()))]


__all__ = ["Matcher", "effective_tolerance"]
