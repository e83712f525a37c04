"""Strangers' text made safe to show: bidi controls dropped, links only to http(s), matches marked.

Everything on the dashboard — headlines, snippets, outlet names, URLs, error messages — comes from
sites we do not control. Jinja2's autoescape makes markup inert; these helpers handle what escaping
cannot: a ``javascript:`` or ``data:`` link is still a link, and a right-to-left override still reorders
the line it sits in. Times are shown relative ("5분 전") with the exact time for the hover title.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

HEADLINE_CHARS = 300
TEXT_CHARS = 600
URL_CHARS = 2000
_BIDI = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C])
_BREAKS = re.compile(r"[\r\n\v\f\x85\u2028\u2029\t]+")


def clean(text: str | None, limit: int = TEXT_CHARS) -> str:
    """One line of plain text: no bidi controls, control characters or line breaks; clipped with '…'."""
    if not text:
        return ""
    flat = _BREAKS.sub(" ", text.translate(_BIDI))
    flat = "".join(ch for ch in flat if unicodedata.category(ch) != "Cc")
    flat = re.sub(r" {2,}", " ", flat).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def http_url(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) URL without credentials or control characters, else None."""
    if not url or len(url) > URL_CHARS or any(unicodedata.category(ch) in ("Cc", "Cf") for ch in url):
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    return url.strip()


def valid_spans(text: str, spans: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """The spans that lie inside ``text``, in order, without overlaps (stored data may be damaged)."""
    out: list[tuple[int, int]] = []
    for span in sorted((int(s[0]), int(s[1])) for s in spans if len(s) == 2):
        start, end = span
        if 0 <= start < end <= len(text) and (not out or start >= out[-1][1]):
            out.append((start, end))
    return out


def highlighted(snippet: str, spans: Sequence[Sequence[int]]) -> Markup:
    """The snippet escaped piece by piece, matched words in <mark>: markup never comes from the article."""
    snippet = snippet[:TEXT_CHARS]
    out, pos = Markup(""), 0
    for start, end in valid_spans(snippet, spans):
        out += escape(_piece(snippet[pos:start])) + Markup("<mark>") + escape(_piece(snippet[start:end]))
        out += Markup("</mark>")
        pos = end
    return out + escape(_piece(snippet[pos:]))


def _piece(text: str) -> str:
    # like clean(), but keeps the spaces at the edges so the words around a <mark> stay apart
    flat = _BREAKS.sub(" ", text.translate(_BIDI))
    return "".join(ch for ch in flat if unicodedata.category(ch) != "Cc")


def exact(when: datetime | None, zone: str) -> str:
    """'2025-12-05 10:00:00 KST', in the configured zone; '' for no time."""
    if when is None:
        return ""
    return when.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def relative(when: datetime | None, now: datetime) -> str:
    """Korean relative time: '방금', '5분 전', '3시간 후', '2일 전'; '—' for no time."""
    if when is None:
        return "—"
    seconds = (when - now).total_seconds()
    ahead, size = seconds > 0, abs(seconds)
    if size < 45:
        return "곧" if ahead else "방금"
    for unit, label in ((86400, "일"), (3600, "시간"), (60, "분")):
        if size >= unit or unit == 60:
            amount = max(1, round(size / unit))
            return f"{amount}{label} {'후' if ahead else '전'}"
    raise AssertionError("unreachable")


def duration(seconds: float) -> str:
    """Korean duration: '45초', '12분', '3시간 5분', '2일 4시간'."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}일" + (f" {hours}시간" if hours else "")
    if hours:
        return f"{hours}시간" + (f" {minutes}분" if minutes else "")
    return f"{minutes}분" if minutes else f"{secs}초"
