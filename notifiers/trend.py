"""The digest's trend: stories per watched term per day over the last days, and how many outlets carried them.

A story counts on the local day its earliest copy was published (else first seen), under every term it
matched; its outlets count towards that term and day. The same figures feed the chart (notifiers/chart.py)
and the plain-text fallback below, so a reader without images loses nothing but the picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from newsradar.events import Story

_BARS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class Trend:
    """Per term, one figure per day (oldest first): stories, and distinct outlets carrying them."""

    days: tuple[date, ...]
    terms: tuple[str, ...]
    stories: dict[str, tuple[int, ...]]
    outlets: dict[str, tuple[int, ...]]

    @property
    def empty(self) -> bool:
        return not any(sum(v) for v in self.stories.values())


def trend(stories: Sequence[Story], terms: Sequence[str], until: datetime, days: int, zone: str) -> Trend:
    """Count ``stories`` into the ``days`` local days ending with ``until``'s day, for ``terms`` in order."""
    tz = ZoneInfo(zone)
    last = until.astimezone(tz).date()
    span = tuple(last - timedelta(days=days - 1 - i) for i in range(days))
    index = {d: i for i, d in enumerate(span)}
    counts = {t: [0] * days for t in terms}
    outlets: dict[str, list[set[str]]] = {t: [set() for _ in span] for t in terms}
    for story in stories:
        when = (story.lead.published_at or story.first_seen).astimezone(tz).date()
        i = index.get(when)
        if i is None:
            continue
        for term in story.terms:
            if term in counts:
                counts[term][i] += 1
                outlets[term][i].update(story.outlets or (story.lead.outlet,))
    return Trend(
        days=span,
        terms=tuple(terms),
        stories={t: tuple(v) for t, v in counts.items()},
        outlets={t: tuple(len(s) for s in v) for t, v in outlets.items()},
    )


def sparkline(values: Sequence[int]) -> str:
    """'▁▁▃█▂' scaled to the largest value (all ▁ when all are zero)."""
    top = max(values, default=0)
    if top <= 0:
        return _BARS[0] * len(values)
    return "".join(_BARS[min(len(_BARS) - 1, round(v / top * (len(_BARS) - 1)))] for v in values)


def trend_lines(data: Trend) -> list[str]:
    """The chart in words, for the plain-text part and Slack without file upload."""
    if not data.days:
        return []
    first, last = data.days[0], data.days[-1]
    lines = [f"최근 {len(data.days)}일 추이 ({first:%m-%d}~{last:%m-%d}, 하루 스토리 수 · 보도 매체 수)"]
    for term in data.terms:
        counts, outlets = data.stories[term], data.outlets[term]
        lines.append(f"  {term}: {sparkline(counts)}  합계 {sum(counts)}건, 오늘 {counts[-1]}건 "
                     f"(매체 {outlets[-1]}곳), 최다 {max(counts)}건")
    return lines
