"""Batch mode: classify a JSONL archive with the daemon's own extractor, matcher and grouper.

Contract (also used by ``newsradar eval``): one output line per input line, same
order: ``{"id", "relevant", "terms", "matches": [{"term", "surface", "start",
"end", "score"}], "story"}``. Match spans index the item's document: its title,
a newline, then its text (the main text extracted from ``html`` when given).
No network, no notifications; the story index lives in memory for the run.
Stories can merge after an item was classified (see processors.grouping), so callers
pass the whole run's outputs through ``settle`` before writing them: every item
then names the story it ended up in.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from newsradar.events import RawItem
from newsradar.settings import Settings

log = logging.getLogger(__name__)


class InputError(ValueError):
    """A classify input line that does not follow the contract; names the line number."""


def read_jsonl(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Parse JSONL lines, skipping blank ones; raises InputError naming the line on bad JSON."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {number}: not valid JSON: {exc.msg}") from None
        if not isinstance(record, dict) or "id" not in record:
            raise InputError(f"line {number}: expected an object with an 'id'")
        yield number, record


def read_lines(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """Like ``read_jsonl``, but a bad line does not stop the run: yields (line number, record, "") for good
    lines and (line number, the object if there was one, what is wrong) for bad ones, so batch mode can
    report it and pass it through as an error row."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, None, f"not valid JSON: {exc.msg}"
            continue
        if not isinstance(record, dict):
            yield number, None, f"expected a JSON object, got {type(record).__name__}"
        elif "id" not in record or record["id"] in (None, ""):
            yield number, record, "missing field 'id'"
        elif not any(record.get(key) for key in ("title", "text", "html")):
            yield number, record, "nothing to classify: no 'title', 'text' or 'html'"
        else:
            yield number, record, ""


def to_raw(record: dict[str, Any], zone: str = "Asia/Seoul") -> RawItem:
    """Turn one input record into the RawItem the daemon would have collected.

    Raises InputError when a field cannot be read (e.g. a ``published`` that is not ISO 8601)."""
    published = record.get("published")
    when = None
    if published:
        try:
            when = datetime.fromisoformat(str(published).replace("Z", "+00:00"))
        except ValueError:
            raise InputError(
                f"'published' {published!r} is not an ISO 8601 time (e.g. 2026-12-01T09:00:00+09:00)"
            ) from None
        if when.tzinfo is None:
            from zoneinfo import ZoneInfo

            when = when.replace(tzinfo=ZoneInfo(zone))
    url = str(record.get("url") or "")
    return RawItem(
        id=str(record["id"]),
        source="classify",
        outlet=str(record.get("outlet") or ""),
        url=url,
        canonical_url=url,
        title=str(record.get("title") or ""),
        body=str(record.get("text") or ""),
        html=record.get("html"),
        published_at=when,
        fetched_at=when,
    )


class Classifier:
    """The daemon's extract → match → group path, in memory."""

    def __init__(self, settings: Settings) -> None:
        from newsradar.pipeline import ExtractMatchStage
        from processors.grouping import Grouper

        self.settings = settings
        self.stage = ExtractMatchStage.from_settings(settings)
        self.grouper = Grouper(timedelta(days=settings.grouping.window_days), None)

    def classify(self, record: dict[str, Any]) -> dict[str, Any]:
        article = self.stage.article(to_raw(record, self.settings.timezone))
        story = self.grouper.assign(article)
        return {
            "id": record["id"],
            "relevant": bool(article.matches),
            "terms": list(article.terms),
            "matches": [
                {"term": m.term, "surface": m.surface, "start": m.start, "end": m.end, "score": round(m.score, 1)}
                for m in article.matches
            ],
            "story": story,
        }

    def settle(self, outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The outputs with each story id replaced by the story it is part of after the whole run
        (error rows, which have no story, pass through)."""
        for out in outputs:
            if "story" in out:
                out["story"] = self.grouper.resolve(out["story"])
        return outputs

    def close(self) -> None:
        self.grouper.close()
