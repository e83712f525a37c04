"""Story builders and settings for the notifier tests (our own Korean text, not the corpus)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from newsradar.events import Article, Match, Story, StoryUpdate
from newsradar.settings import Settings, parse

KST = timezone(timedelta(hours=9))
PUBLISHED = datetime(2026, 6, 14, 17, 17, tzinfo=KST)

SNIPPET = "포항시는 15일 이차전지 특화단지 조성 계획을 발표하고 중국국제배터리박람회(CIBF)에 참가한다고 밝혔다."
OUTLETS = ("연합뉴스", "뉴시스", "뉴스1", "경북일보", "매일신문")


def spans(text: str, *words: str) -> tuple[tuple[int, int], ...]:
    """(start, end) of the first occurrence of each word in ``text``."""
    out = []
    for word in words:
        start = text.index(word)
        out.append((start, start + len(word)))
    return tuple(sorted(out))


def make_story(
    story_id: str = "story0001",
    *,
    title: str = "포항시, 이차전지 특화단지 조성 본격화",
    url: str = "https://news.example.co.kr/article/1001",
    outlets: tuple[str, ...] = ("연합뉴스",),
    terms: tuple[str, ...] = ("이차전지",),
    snippet: str = SNIPPET,
    highlights: tuple[tuple[int, int], ...] | None = None,
    rules: tuple[str, ...] = (),
    published: datetime | None = PUBLISHED,
    first_seen: datetime | None = None,
) -> Story:
    """A story as the grouping stage would publish it; ``copies`` follows the outlet count."""
    lead = Article(
        id=f"{story_id}-lead",
        source="test-feed",
        outlet=outlets[0] if outlets else "",
        url=url,
        title=title,
        text=snippet,
        published_at=published,
        matches=tuple(Match(term=t, surface=t, start=0, end=len(t), score=100.0) for t in terms),
    )
    if highlights is None:
        highlights = spans(snippet, "이차전지") if "이차전지" in snippet else ()
    return Story(
        id=story_id,
        lead=lead,
        first_seen=first_seen or (published or PUBLISHED) + timedelta(minutes=3),
        outlets=outlets,
        copies=max(1, len(outlets)),
        terms=terms,
        matches=lead.matches,
        snippet=snippet,
        highlights=highlights,
        rules=rules,
    )


def update(story: Story, *, is_new: bool | None = None) -> StoryUpdate:
    return StoryUpdate(story=story, article_id=f"{story.id}-{story.copies}",
                       is_new=story.copies == 1 if is_new is None else is_new)


def settings(state_dir: Path, **sections: Any) -> Settings:
    """Validated settings with state under ``state_dir``; ``sections`` are YAML-shaped overrides."""
    data: dict[str, Any] = {"state_dir": str(state_dir)}
    data.update(sections)
    return parse(data, "<test>")
