"""What matches mean for an alert: rules over terms (all / any / none) with their own routing,
and the snippet around the first match with the spans notifiers show in bold.

Example rule: "포항 AND any of 이차전지, 특화단지, CIBF -> #battery-pohang". With no rules
configured, routing stays the plain any-term behaviour (the notifiers' routes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from newsradar.errors import ConfigError
from newsradar.events import Match
from newsradar.settings import RuleSettings

log = logging.getLogger(__name__)


def check_rules(rules: Sequence[RuleSettings], term_names: Iterable[str]) -> None:
    """Raise ConfigError if a rule names a term the watchlist does not have, or repeats a name.

    Called once when the matcher is built, so a typo in a rule fails at start-up
    instead of silently never routing anything.
    """
    known = set(term_names)
    seen: set[str] = set()
    problems: list[str] = []
    for i, rule in enumerate(rules):
        if rule.name in seen:
            problems.append(f"watchlist.rules[{i}].name: rule name {rule.name!r} is used twice")
        seen.add(rule.name)
        for field in ("all", "any", "none"):
            for term in getattr(rule, field):
                if term not in known:
                    problems.append(
                        f"watchlist.rules[{i}].{field}: {term!r} (rule {rule.name!r}) is not a watchlist term; "
                        f"expected one of: {', '.join(sorted(known))}"
                    )
        forbidden = set(rule.none)
        required_and_forbidden = set(rule.all) & forbidden
        if rule.any and set(rule.any) <= forbidden:
            required_and_forbidden |= set(rule.any)
        if required_and_forbidden:
            problems.append(
                f"watchlist.rules[{i}]: rule {rule.name!r} can never match "
                f"({', '.join(sorted(required_and_forbidden))} both required and forbidden)"
            )
    if problems:
        raise ConfigError("invalid watchlist rules:\n  " + "\n  ".join(problems))


def rule_matches(rule: RuleSettings, terms: Iterable[str]) -> bool:
    """True when every ``all`` term, at least one ``any`` term (if given) and no ``none`` term is present."""
    present = set(terms)
    if not present.issuperset(rule.all):
        return False
    if rule.any and present.isdisjoint(rule.any):
        return False
    return present.isdisjoint(rule.none)


def rules_matched(rules: Sequence[RuleSettings], terms: Iterable[str]) -> list[RuleSettings]:
    """The rules (in config order) that ``terms`` satisfy. A story with no terms satisfies none."""
    present = set(terms)
    if not present:
        return []
    return [rule for rule in rules if rule_matches(rule, present)]


# --- snippets ----------------------------------------------------------------------

_ELLIPSIS = "…"


def _region(text: str, matches: Sequence[Match]) -> tuple[int, int, Match | None]:
    """The title or body part the snippet is cut from, and the match it is centred on."""
    title_end = text.find("\n")
    if title_end < 0:
        title_end = len(text)
    body = (title_end + 1, len(text))
    valid = sorted((m for m in matches if 0 <= m.start < m.end <= len(text)), key=lambda m: m.start)
    focus = next((m for m in valid if m.start >= body[0]), valid[0] if valid else None)
    if (focus is not None and focus.start >= body[0]) or (focus is None and body[0] < body[1]):
        return body[0], body[1], focus
    return 0, title_end, focus


def _cut(text: str, lo: int, hi: int, focus: Match | None, width: int) -> tuple[int, int]:
    """Window [a, b) of about ``width`` chars around ``focus``, moved to word boundaries."""
    if focus is None:
        a, b = lo, min(hi, lo + width)
        keep_from, keep_to = a, a
    else:
        a = max(lo, focus.start - width // 3)
        b = min(hi, a + width)
        a = max(lo, b - width)
        b = max(b, min(hi, focus.end))
        keep_from, keep_to = focus.start, focus.end
    if a > lo:  # start after the first space, unless that would drop the match
        space = next((i for i in range(a, keep_from) if text[i].isspace()), None)
        if space is not None:
            a = space + 1
    if b < hi:  # end at the last space, unless that would drop the match
        space = next((i for i in range(b - 1, max(keep_to, a) - 1, -1) if text[i].isspace()), None)
        if space is not None:
            b = space
    return a, b


def make_snippet(text: str, matches: Sequence[Match], width: int = 160) -> tuple[str, list[tuple[int, int]]]:
    """About ``width`` chars of ``text`` around its first match, and the match spans inside it.

    The first match in the body is preferred to one in the title (alerts show the
    title anyway); the snippet never crosses the title/body line break. Cuts fall on
    word boundaries and are marked "…"; runs of whitespace become one space. The
    spans index the returned snippet, so notifiers can bold them.
    """
    if not text:
        return "", []
    lo, hi, focus = _region(text, matches)
    a, b = _cut(text, lo, hi, focus, max(width, 20))
    prefix = _ELLIPSIS if a > lo else ""
    out: list[str] = []
    where: list[int] = []  # where[i]: position in ``out`` of text[a + i]
    for ch in text[a:b]:
        if ch.isspace():
            if out and out[-1] != " ":
                out.append(" ")
            where.append(max(len(out) - 1, 0))
        else:
            where.append(len(out))
            out.append(ch)
    if out and out[-1] == " ":
        out.pop()
    body = "".join(out)
    spans: list[tuple[int, int]] = []
    for m in sorted(matches, key=lambda m: m.start):
        s, e = max(m.start, a), min(m.end, b)
        if s < e and m.end <= len(text):
            start, end = where[s - a], min(where[e - 1 - a] + 1, len(body))
            if start < end:
                spans.append((len(prefix) + start, len(prefix) + end))
    suffix = _ELLIPSIS if b < hi else ""
    return prefix + body + suffix, spans


__all__ = ["check_rules", "make_snippet", "rule_matches", "rules_matched"]
