"""What each dashboard page shows, read from the state store (read-only) and the settings.

Each function returns plain dicts for one template; every string from outside (headline, outlet, URL,
error) passes through ``text.clean`` / ``text.http_url`` here, and the template autoescapes it. Times
are shown relative with the exact time (in ``settings.timezone``) for the hover title.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from newsradar.events import Story
from newsradar.settings import Settings
from newsradar.source_health import DISABLED, FAILING, HEALTHY, SILENT
from newsradar.store import SourceStatus, StateStore
from newsradar.web import text

NextPoll = Callable[[str], datetime | None]
STATUS_LABELS = {HEALTHY: "정상", FAILING: "실패", SILENT: "침묵", DISABLED: "사용 안 함", "unknown": "확인 전"}
ALERT_STATES = {"sent": "보냄", "pending": "보내는 중(확인 필요)"}


@dataclass(frozen=True)
class Filters:
    """The Stories page's query: a headline search, a watched term, a local day, a page number."""

    query: str = ""
    term: str = ""
    day: date | None = None
    page: int = 1

    @classmethod
    def parse(cls, params: dict[str, str], terms: list[str]) -> Filters:
        """From query parameters; anything malformed is ignored rather than an error page."""
        query = text.clean(params.get("q", ""), 100)
        term = params.get("term", "")
        try:
            day = date.fromisoformat(params.get("day", "")) if params.get("day") else None
        except ValueError:
            day = None
        page = int(params["page"]) if params.get("page", "").isdigit() else 1
        return cls(query, term if term in terms else "", day, max(1, min(page, 10_000)))


class Pages:
    """Builds the context of each page; holds the read-only store and what only the daemon knows."""

    def __init__(self, settings: Settings, store: StateStore, next_poll: NextPoll | None = None) -> None:
        self.settings = settings
        self.store = store
        self.zone = settings.timezone
        self.terms = [t.name for t in settings.watchlist.terms]
        self.next_poll = next_poll or (lambda _name: None)

    def _when(self, when: datetime | None, now: datetime) -> dict[str, str]:
        return {"relative": text.relative(when, now), "exact": text.exact(when, self.zone)}

    # -- shared header ------------------------------------------------------------------------------------
    def broken_sources(self) -> int:
        """Enabled sources currently failing or silent (the count in every page's header)."""
        statuses = self.store.source_statuses()
        enabled = {s.name for s in self.settings.sources if s.enabled}
        return sum(1 for name, s in statuses.items() if name in enabled and s.status in (FAILING, SILENT))

    # -- stories --------------------------------------------------------------------------------------------
    def stories(self, filters: Filters, now: datetime) -> dict[str, Any]:
        size = self.settings.web.page_size
        start = end = None
        if filters.day is not None:
            start = datetime.combine(filters.day, datetime.min.time(), tzinfo=ZoneInfo(self.zone))
            end = start + timedelta(days=1)
        found = self.store.recent_stories(
            term=filters.term or None, start=start, end=end, query=filters.query or None,
            limit=size + 1, offset=(filters.page - 1) * size,
        )
        return {
            "filters": filters,
            "day": filters.day.isoformat() if filters.day else "",
            "terms": self.terms,
            "stories": [self._story_row(s, now) for s in found[:size]],
            "more": len(found) > size,
        }

    def _story_row(self, story: Story, now: datetime) -> dict[str, Any]:
        lead = story.lead
        return {
            "id": story.id,
            "headline": text.clean(lead.title, text.HEADLINE_CHARS) or "(제목 없음)",
            "outlet": text.clean(lead.outlet, 80) or "매체 미상",
            "carried": story.carried_by,
            "copies": story.copies,
            "first_seen": self._when(story.first_seen, now),
            "terms": [text.clean(t, 40) for t in story.terms],
        }

    # -- one story ------------------------------------------------------------------------------------------
    def story(self, story_id: str, now: datetime) -> dict[str, Any] | None:
        story = self.store.story(story_id)
        if story is None:
            return None
        copies = [
            {
                "outlet": text.clean(c.outlet, 80) or "매체 미상",
                "title": text.clean(c.title, text.HEADLINE_CHARS) or "(제목 없음)",
                "url": text.http_url(c.url),
                "shown_url": text.clean(c.url, 120),
                "when": self._when(c.published_at or c.fetched_at, now),
            }
            for c in self.store.story_copies(story_id)
        ]
        lead = story.lead
        return {
            **self._story_row(story, now),
            "lead_url": text.http_url(lead.url),
            "published": self._when(lead.published_at, now),
            "snippet": text.highlighted(story.snippet, story.highlights),
            "outlets": [text.clean(o, 80) for o in story.outlets],
            "rules": [text.clean(r, 80) for r in story.rules],
            "copy_list": copies,
            "alerts": [self._alert(*a) for a in self.store.story_alerts(story_id)],
        }

    def _alert(self, channel: str, state: str, ref: str | None, outlets: int) -> dict[str, Any]:
        return {
            "channel": text.clean(channel, 80),
            "state": ALERT_STATES.get(state, text.clean(state, 20)),
            "outlets": outlets,
            "ref": text.clean(ref, 200),
            "permalink": self._permalink(ref),
        }

    def _permalink(self, ref: str | None) -> str | None:
        """https://<workspace>/archives/<channel id>/p<ts digits> for a bot message ref "<channel id>/<ts>"."""
        workspace = self.settings.web.slack_workspace_url
        if not workspace or not ref or "/" not in ref:
            return None
        channel, _, ts = ref.rpartition("/")
        if not channel.isalnum() or not ts.replace(".", "", 1).isdigit():
            return None
        return f"{workspace}/archives/{channel}/p{ts.replace('.', '')}"

    # -- sources --------------------------------------------------------------------------------------------
    def sources(self, now: datetime) -> dict[str, Any]:
        statuses = self.store.source_statuses()
        recent = self.store.items_since(now - timedelta(hours=24))
        rows = [self._source_row(s.name, s.kind, s.enabled, s.interval, statuses.get(s.name), recent, now)
                for s in self.settings.sources]
        counts = {key: sum(1 for r in rows if r["status"] == key) for key in STATUS_LABELS}
        return {"sources": rows, "counts": counts, "labels": STATUS_LABELS}

    def _source_row(self, name: str, kind: str, enabled: bool, interval: float, status: SourceStatus | None,
                    recent: dict[str, int], now: datetime) -> dict[str, Any]:
        key = DISABLED if not enabled else (status.status if status else "unknown")
        next_at = None
        if enabled:
            next_at = self.next_poll(name) or (
                status.last_poll_at + timedelta(seconds=interval) if status and status.last_poll_at else None)
        return {
            "name": text.clean(name, 120),
            "kind": kind,
            "status": key,
            "label": STATUS_LABELS[key],
            "last_check": self._when(status.last_poll_at if status else None, now),
            "next_check": self._when(next_at, now) if enabled else {"relative": "—", "exact": ""},
            "items_24h": recent.get(name, 0),
            "failures": status.failures if status else 0,
            "last_error": text.clean(status.last_error, 300) if status and status.failures else "",
            "failing_since": self._when(status.failing_since if status else None, now),
            "last_item": self._when(status.last_item_at if status else None, now),
        }
