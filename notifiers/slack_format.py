"""Turn a Story into a safe Slack message: escaped mrkdwn blocks within Slack's limits, plus routing.

The plain-text helpers (one_line, strip_bidi, local_time, http_url, reader_url, valid_spans, marked) serve every
notifier.

Article text is hostile input: it must not ping (<!channel>), link (<https://evil|click>), restyle
(*bold*) or reorder (RTL overrides) anything, so every piece goes through ``safe_inline``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from newsradar.events import Story
from newsradar.settings import RuleSettings, SlackSettings

log = logging.getLogger(__name__)

# Slack's documented limits (Block Kit reference, chat.postMessage "text" guidance).
SECTION_LIMIT = 3000
CONTEXT_LIMIT = 3000
MAX_BLOCKS = 50
FALLBACK_LIMIT = 4000
HEADLINE_CHARS = 300  # a longer "headline" is page junk; keep the message readable
SNIPPET_CHARS = 600
OUTLET_CHARS = 80
MAX_OUTLETS_LISTED = 30
URL_CHARS = 2000
ELLIPSIS = "…"
ZWSP = "\u200b"  # lets *bold* work inside Korean words, where Slack wants a word boundary

EVENT_TYPE = "newsradar_story"

_BIDI = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C])
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x85\u2028\u2029]+")
_SPACES = re.compile(r"[ \t]{2,}")
# Full-width look-alikes: read the same (natural in Korean text) but are not mrkdwn markup.
_MRKDWN = str.maketrans({"*": "＊", "_": "＿", "~": "～", "`": "｀"})


def strip_bidi(text: str) -> str:
    """Drop directional override/isolate marks, which can make a headline display reversed."""
    return text.translate(_BIDI)


def one_line(text: str) -> str:
    """Collapse CR/LF and other line breaks into single spaces (one-line fields, headers)."""
    return _SPACES.sub(" ", _LINE_BREAKS.sub(" ", text)).strip()


def flatten(text: str) -> str:
    """Line breaks to spaces without trimming (for pieces that sit between highlighted words)."""
    return _LINE_BREAKS.sub(" ", text)


def escape(text: str) -> str:
    """Slack's three control characters as entities: nothing in ``text`` can form <...> tokens."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def safe_inline(text: str) -> str:
    """Article text made inert for mrkdwn: one line, no bidi marks, no markup, entities escaped."""
    return escape(strip_bidi(one_line(text)).translate(_MRKDWN))


def clip(raw: str, limit: int, render: Callable[[str], str] = safe_inline) -> str:
    """``render(raw)`` cut to at most ``limit`` chars, ending in "…", never splitting an entity."""
    whole = render(raw)
    if len(whole) <= limit:
        return whole
    lo, hi = 0, len(raw)
    while lo < hi:  # longest prefix whose rendering plus the ellipsis still fits
        mid = (lo + hi + 1) // 2
        if len(render(raw[:mid]).rstrip()) + len(ELLIPSIS) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return render(raw[:lo]).rstrip() + ELLIPSIS


def local_time(when: datetime | None, zone: str) -> str:
    """'2026-06-14 17:17 KST': a time as people in ``zone`` read it."""
    if when is None:
        return "시각 미상"
    local = when.astimezone(ZoneInfo(zone))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or zone}"


def http_url(url: str) -> str | None:
    """The URL if it is a plausible http(s) link (no javascript:, no spaces or quotes), else None."""
    return _link(url, local_files=False)


def reader_url(url: str) -> str | None:
    """Like http_url, but a local file:// URL (an offline source such as the demo's pages) is kept too.

    For console alerts and digests, which are read as files or mail where a file link is at worst a dead
    link; only offline sources (or a feed lying about its links) produce one. Slack does not link file URLs
    and its readers are elsewhere, so Slack stays http(s). javascript:, data: and the rest stay refused, and
    so does a file URL naming a host (file://server/share): opening one hands that server Windows credentials.
    """
    return _link(url, local_files=True)


def _link(url: str, *, local_files: bool) -> str | None:
    url = one_line(strip_bidi(url))
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        usable = bool(parts.netloc)
    else:
        local = parts.netloc.lower() in ("", "localhost") and parts.path.startswith("/")
        usable = local_files and scheme == "file" and local
    if not usable or len(url) > URL_CHARS:
        return None
    return quote(url, safe=":/?#[]@!$&'()*+,;=%~-._")


def safe_url(url: str) -> str | None:
    """An http(s) URL fit for <url|label>: percent-encoded so "|", "<", ">" cannot end the link."""
    found = http_url(url)
    return escape(found) if found else None


def highlighted(snippet: str, spans: Sequence[tuple[int, int]], limit: int = SECTION_LIMIT,
                story_id: str = "?") -> str:
    """The snippet as mrkdwn with each matched span in *bold*, escaped chunk by chunk, within ``limit``."""
    text = snippet[:SNIPPET_CHARS]
    good = valid_spans(text, spans, story_id)
    pieces: list[tuple[str, bool]] = []
    pos = 0
    for start, end in good:
        pieces += [(text[pos:start], False), (text[start:end], True)]
        pos = end
    pieces.append((text[pos:], False))
    out = ""
    budget = limit - len(ELLIPSIS)
    for raw, bold in pieces:
        chunk = _bold(safe_inline(raw)) if bold else safe_inline_keep_edges(raw)
        if len(out) + len(chunk) <= budget:
            out += chunk
            continue
        room = budget - len(out) - (4 if bold else 0)
        if room > 0:
            cut = clip(raw, room + len(ELLIPSIS), safe_inline)[: -len(ELLIPSIS)]
            out += _bold(cut) if bold and cut else cut
        return out.rstrip() + ELLIPSIS
    return out.strip()


def safe_inline_keep_edges(text: str) -> str:
    """Like safe_inline but keeps a leading/trailing space, so words either side of a bold span stay apart."""
    inner = safe_inline(text)
    if not inner:
        return " " if text[:1].isspace() else ""
    lead = " " if text[:1].isspace() else ""
    trail = " " if text[-1:].isspace() else ""
    return lead + inner + trail


def _bold(mrkdwn: str) -> str:
    return f"{ZWSP}*{mrkdwn}*{ZWSP}" if mrkdwn else ""


def valid_spans(text: str, spans: Sequence[tuple[int, int]], story_id: str = "?") -> list[tuple[int, int]]:
    """Highlight spans that fit ``text``, sorted, trimmed of edge spaces, without overlaps (others logged)."""
    good: list[tuple[int, int]] = []
    dropped = 0
    for start, end in sorted(spans):
        # trim whitespace: Slack will not bold "* 이차전지*"
        while start < end and text[start:start + 1].isspace():
            start += 1
        while end > start and text[end - 1:end].isspace():
            end -= 1
        if not (0 <= start < end <= len(text)) or (good and start < good[-1][1]):
            dropped += 1  # out of range (e.g. beyond the clip) or overlapping: show unbolded
            continue
        good.append((start, end))
    if dropped:
        log.warning("story %s: %d highlight span(s) outside the snippet (%d chars) or overlapping; shown unbolded",
                    story_id, dropped, len(text))
    return good


def marked(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """``text`` with each span (sorted, non-overlapping: see valid_spans) set in 【】, for plain-text readers."""
    out, pos = "", 0
    for start, end in spans:
        out += text[pos:start] + "【" + text[start:end] + "】"
        pos = end
    return out + text[pos:]


def channels_for(story: Story, slack: SlackSettings, rules: Sequence[RuleSettings]) -> list[str]:
    """Routes whose terms meet story.terms, then channels of the rules it satisfies; else the default."""
    found: list[str] = []
    terms = set(story.terms)
    for route in slack.routes:
        if terms & set(route.terms) and route.channel not in found:
            found.append(route.channel)
    for rule in rules:
        if rule.channel and rule.name in story.rules and rule.channel not in found:
            found.append(rule.channel)
    return found or [slack.default_channel]


def outlets_line(story: Story) -> str:
    """'3개 매체 보도 (carried by 3 outlets): A, B, C' with the list capped."""
    n = story.carried_by
    names = [clip(o, OUTLET_CHARS) for o in story.outlets[:MAX_OUTLETS_LISTED]]
    more = len(story.outlets) - len(names)
    listed = ", ".join(names) + (f" 외 {more}곳" if more > 0 else "")
    head = f"{n}개 매체 보도 (carried by {n} outlet{'s' if n != 1 else ''})"
    return f"{head}: {listed}" if listed else head


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: Slack must not auto-link URLs, channel names or mentions found in article text
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def story_blocks(story: Story, zone: str) -> list[dict[str, Any]]:
    """The Block Kit message for a story in its current state (used for the post and for every edit)."""
    lead = story.lead
    title = clip(lead.title or "(제목 없음)", HEADLINE_CHARS)
    url = safe_url(lead.url)
    if url is None or len(url) + len(title) + 4 > SECTION_LIMIT:
        log.warning("story %s: lead URL %.120r is not a usable http(s) link; headline shown unlinked",
                    story.id, lead.url)
        url = None
    headline = f"*<{url}|{title}>*" if url else f"*{title}*"
    terms = ", ".join(safe_inline(t) for t in story.terms) or "-"
    meta = f"{clip(lead.outlet or '매체 미상', OUTLET_CHARS)} · {local_time(lead.published_at, zone)} · 키워드: {terms}"
    context = outlets_line(story)
    if story.rules:
        context += " · 규칙: " + ", ".join(safe_inline(r) for r in story.rules)
    context += f" · 첫 포착 {local_time(story.first_seen, zone)}"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": _mrkdwn(headline)},
        {"type": "context", "elements": [_mrkdwn(_fit(meta, CONTEXT_LIMIT))]},
    ]
    snippet = highlighted(story.snippet, story.highlights, story_id=story.id) if story.snippet else ""
    if snippet:
        blocks.append({"type": "section", "text": _mrkdwn(snippet)})
    blocks.append({"type": "context", "elements": [_mrkdwn(_fit(context, CONTEXT_LIMIT))]})
    return blocks[:MAX_BLOCKS]


def fallback_text(story: Story) -> str:
    """Top-level ``text``: what notifications and screen readers show; plain, escaped, ≤ 4000 chars."""
    terms = "·".join(story.terms)
    outlet = story.lead.outlet or "매체 미상"
    raw = f"[{terms}] {story.lead.title[:HEADLINE_CHARS]} — {outlet} ({story.carried_by}개 매체)"
    return clip(raw, FALLBACK_LIMIT)


def metadata(story: Story) -> dict[str, Any]:
    """Message metadata that lets a restarted notifier find its own post in conversations.history."""
    return {"event_type": EVENT_TYPE, "event_payload": {"story_id": story.id}}


def _fit(mrkdwn: str, limit: int) -> str:
    # Already-escaped text: cut before any entity that would be split, then mark the cut.
    if len(mrkdwn) <= limit:
        return mrkdwn
    cut = mrkdwn[: limit - len(ELLIPSIS)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + ELLIPSIS
