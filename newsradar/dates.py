"""Publication times as written by feeds and article pages, turned into timezone-aware datetimes.

Feeds (collectors) and pages (processors) carry the same few formats: RFC 822, ISO 8601 and Korean dotted
dates. They live in the core so both stages parse them one way. A time without a zone is local to the
source, so the caller names that zone (a source's configured timezone, or Asia/Seoul for Korean pages).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

SEOUL = ZoneInfo("Asia/Seoul")

_DOTTED_DATE = re.compile(r"^(\d{4})[./](\d{1,2})[./](\d{1,2})")  # "2024.12.03 13:57", "2024/12/3"


def parse_time(raw: str | None, zone: tzinfo) -> datetime | None:
    """``raw`` (RFC 822, ISO 8601 or a Korean dotted date) as an aware datetime, or None if it is none of those.

    A time without a zone, or with a zone name RFC 822 does not define (e.g. "KST"), is taken as ``zone``;
    RFC 5322's "-0000" means UTC with no local zone known.
    """
    text = (raw or "").strip()
    if not text:
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        iso = _DOTTED_DATE.sub(lambda m: f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d}", text)
        try:
            when = datetime.fromisoformat(iso)
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC if text.endswith("-0000") else zone)
    return when
