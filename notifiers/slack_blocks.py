"""Block Kit for messages that list many stories: the quiet-hours roll-up and the daily digest in Slack.

Both are lines of stories ("• headline (linked) — outlets · N개 매체") packed into section blocks of at most
3,000 characters, within Slack's 50 blocks per message; what does not fit one message goes into numbered parts
(digest) or is summed up in a last line (roll-up, which must stay ONE message). Every piece of article text
goes through slack_format's escaping, so a headline can neither ping nor link nor restyle anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from newsradar.events import Story
from notifiers import slack_format as fmt

ROLLUP_EVENT = "newsradar_rollup"
DIGEST_EVENT = "newsradar_digest"
HEADER_LIMIT = 150  # plain_text of a header block
OUTLETS_SHOWN = 5
# A line is short by construction (headline 300 + URL + outlets), so any line fits a section on its own.
LINE_LIMIT = 1200


def story_line(story: Story, zone: str) -> str:
    """'• <url|headline> — 연합뉴스, 뉴시스 외 1곳 · 3개 매체 · 06-14 17:17' as safe mrkdwn."""
    lead = story.lead
    title = fmt.clip(lead.title or "(제목 없음)", 200)
    url = fmt.safe_url(lead.url)
    headline = f"<{url}|{title}>" if url and len(url) < 700 else title
    names = [fmt.clip(o, 40) for o in story.outlets[:OUTLETS_SHOWN]] or [fmt.clip(lead.outlet or "매체 미상", 40)]
    more = len(story.outlets) - len(names)
    outlets = ", ".join(names) + (f" 외 {more}곳" if more > 0 else "")
    when = fmt.local_time(lead.published_at or story.first_seen, zone)
    return fmt._fit(f"• *{headline}* — {outlets} · *{story.carried_by}개 매체* · {when}", LINE_LIMIT)


def header(text: str) -> dict[str, Any]:
    plain = fmt.one_line(fmt.strip_bidi(text))
    return {"type": "header", "text": {"type": "plain_text", "text": plain[:HEADER_LIMIT], "emoji": False}}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": fmt._fit(text, fmt.CONTEXT_LIMIT),
                                             "verbatim": True}]}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}


def pack(lines: Sequence[str], limit: int = fmt.SECTION_LIMIT) -> list[str]:
    """Lines joined by newlines into as few texts of at most ``limit`` characters as possible, in order."""
    texts: list[str] = []
    current = ""
    for line in lines:
        joined = f"{current}\n{line}" if current else line
        if len(joined) <= limit:
            current = joined
            continue
        if current:
            texts.append(current)
        current = line[:limit]
    if current:
        texts.append(current)
    return texts


# -- the quiet-hours roll-up ----------------------------------------------------------------------------------
def rollup_blocks(stories: Sequence[Story], window: str, zone: str) -> list[dict[str, Any]]:
    """ONE message for every story held during a quiet window, most-carried first (copies already counted)."""
    ordered = sorted(stories, key=lambda s: (-s.carried_by, -s.copies, s.id))
    blocks: list[dict[str, Any]] = [
        header(f"조용한 시간 동안 보류된 새 기사 {len(ordered)}건"),
        context(f"방해 금지 시간 {fmt.safe_inline(window)} 동안 포착되어 이제 보냅니다 · 매체 수가 많은 순"),
    ]
    room = fmt.MAX_BLOCKS - len(blocks) - 1  # keep one block for "and N more"
    texts = pack([f"{story_line(s, zone)}  _{fmt.safe_inline(', '.join(s.terms))}_" for s in ordered])
    shown = texts[:room]
    blocks += [section(t) for t in shown]
    listed = sum(t.count("\n") + 1 for t in shown)
    if listed < len(ordered):
        blocks.append(context(f"외 {len(ordered) - listed}건은 일일 다이제스트에서 볼 수 있습니다."))
    return blocks


def rollup_text(stories: Sequence[Story]) -> str:
    """Top-level fallback text of a roll-up (notifications, screen readers)."""
    return fmt.clip(f"[newsradar] 조용한 시간 동안 보류된 새 기사 {len(stories)}건", fmt.FALLBACK_LIMIT)


def rollup_metadata(rollup_id: str) -> dict[str, Any]:
    """Lets a restarted notifier find a roll-up it posted before a crash in conversations.history."""
    return {"event_type": ROLLUP_EVENT, "event_payload": {"rollup_id": rollup_id}}
