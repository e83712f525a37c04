"""The fallback when neither Slack nor SMTP is configured: print alerts and digests, and keep them as files.

Alerts go to ``{state_dir}/alerts/{story_id}--{channel}.txt`` (rewritten when more outlets carry the
story) and digests to ``{state_dir}/digests/{day}--{recipient}.html|.txt``, with the same idempotency
records as Slack and SMTP, so "one alert per story" and "one digest per day" hold here too. Quiet hours hold
alerts here as in Slack; at the window's end the held stories are printed one by one or as one roll-up
(``{state_dir}/alerts/rollup-{id}--{channel}.txt``).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import unicodedata
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from newsradar.errors import PermanentError
from newsradar.events import Story, StoryUpdate
from newsradar.settings import Settings
from newsradar.store import StateStore
from notifiers import slack_format as fmt
from notifiers.claims import RELEASE_LEASE, RELEASING
from notifiers.digest import Digest, html_with_chart_file
from notifiers.quiet import describe, quiet_until

log = logging.getLogger(__name__)

_UNSAFE_NAME = re.compile(r"[^0-9A-Za-z가-힣._@+-]+")


def plain(text: str) -> str:
    """One line for a terminal: no line breaks, bidi marks or control characters (no ANSI escapes)."""
    flat = fmt.one_line(fmt.strip_bidi(text))
    return "".join(ch for ch in flat if unicodedata.category(ch) != "Cc")


def safe_name(text: str, fallback: str) -> str:
    """A file-name fragment: no path separators, no dot-dot, bounded length."""
    name = _UNSAFE_NAME.sub("_", text).strip("._") [:80]
    return name or fallback


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a crash never leaves half an alert."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def render_alert(story: Story, channel: str, zone: str, *, update: bool) -> str:
    """A readable Korean alert in plain text."""
    lead = story.lead
    kind = "보도 매체 증가" if update else "새 기사"
    snippet = fmt.marked(story.snippet, fmt.valid_spans(story.snippet, story.highlights, story.id))
    outlets = ", ".join(plain(o) for o in story.outlets) or plain(lead.outlet)
    lines = [
        f"[newsradar] {kind} · 키워드: {', '.join(story.terms) or '-'} · {channel}",
        f"제목: {plain(lead.title)[: fmt.HEADLINE_CHARS] or '(제목 없음)'}",
        f"매체: {plain(lead.outlet) or '매체 미상'} · {fmt.local_time(lead.published_at, zone)}",
        f"링크: {fmt.reader_url(lead.url) or '(없음)'}",
    ]
    if snippet:
        lines.append(f"요약: {plain(snippet)[: fmt.SNIPPET_CHARS]}")
    lines.append(f"{story.carried_by}개 매체 보도: {outlets}")
    if story.rules:
        lines.append(f"규칙: {', '.join(plain(r) for r in story.rules)}")
    lines.append(f"첫 포착: {fmt.local_time(story.first_seen, zone)} · story: {story.id}")
    return "\n".join(lines) + "\n"


class ConsoleAlerts:
    """AlertSink that prints alerts and keeps each one as a file under ``{state_dir}/alerts``."""

    def __init__(self, settings: Settings, store: StateStore, out: TextIO | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self._settings = settings
        self._store = store
        self._out = out
        self._dir = settings.state_path / "alerts"
        self._buffer: dict[str, StoryUpdate] = {}
        self._clock = clock

    def channels(self, story: Story) -> list[str]:
        """The channels (store keys and file-name parts) a story goes to, routed as for Slack."""
        return fmt.channels_for(story, self._settings.slack, self._settings.watchlist.rules)

    def path(self, story: Story, channel: str) -> Path:
        return self._dir / f"{safe_name(story.id, 'story')}--{safe_name(channel, 'channel')}.txt"

    def add(self, update: StoryUpdate) -> None:
        """Buffer an update; several updates of one story collapse into its most complete state."""
        held = self._buffer.get(update.story.id)
        if held is None or update.story.copies >= held.story.copies:
            self._buffer[update.story.id] = update

    def flush(self) -> None:
        """Print and write every buffered story; raises PermanentError when the files cannot be written."""
        for story_id in list(self._buffer):
            story = self._buffer[story_id].story
            for channel in self.channels(story):
                self._deliver(story, channel)
            del self._buffer[story_id]

    def close(self) -> None:
        self._buffer.clear()

    def _deliver(self, story: Story, channel: str, releasing: bool = False) -> None:
        record = self._store.alert(story.id, channel)
        if record is None:
            until = quiet_until(self._settings.slack.quiet_hours_for(channel), self._clock())
            if until is not None:
                self._store.hold_alert(story.id, channel, story.carried_by, self._clock())
                log.info("alert for story %s held for %s until %s (quiet hours)", story.id, channel,
                         fmt.local_time(until, self._settings.timezone))
                return
        if record is not None and (record[0] == "held" or (record[1] or "").startswith("rollup:")
                                   or (record[0] == "pending" and record[1] == RELEASING and not releasing)):
            return  # held until the window ends, or being released (release_due prints it)
        path = self.path(story, channel)
        if record is not None and record[0] == "pending" and _holds(path, story.id):
            # written before a crash, not yet recorded: adopt it rather than print it twice
            self._store.record_alert(story.id, channel, "sent", str(path), record[2])
            record = ("sent", str(path), record[2])
        if record is not None and record[0] == "sent" and story.carried_by <= record[2]:
            return
        update = record is not None and record[0] == "sent"
        if not update:
            self._store.record_alert(story.id, channel, "pending", None, story.carried_by)
        text = render_alert(story, channel, self._settings.timezone, update=update)
        try:
            write_atomic(path, text)
        except OSError as exc:
            raise PermanentError(f"console alerts: cannot write {path}: {exc.strerror or exc}") from None
        print(text, file=self._out or sys.stdout, flush=True)
        self._store.record_alert(story.id, channel, "sent", str(path), story.carried_by)


    def release_due(self) -> int:
        """Print what quiet hours held for channels whose window is over (see SlackNotifier.release_due)."""
        released = 0
        now = self._clock()
        for rollup_id, channel, story_ids in self._store.take_over_rollups(now - RELEASE_LEASE, now):
            released += self._print_rollup(rollup_id, channel, story_ids)
        for story_id, channel in self._store.take_over_releases(RELEASING, now - RELEASE_LEASE, now):
            story = self._store.story(story_id)
            if story is not None:  # printing twice after a crash is harmless; the file is rewritten
                self._deliver(story, channel, releasing=True)
                released += 1
        held: dict[str, list[str]] = {}
        for story_id, channel, _ in self._store.held_alerts():
            held.setdefault(channel, []).append(story_id)
        for channel, story_ids in held.items():
            quiet = self._settings.slack.quiet_hours_for(channel)
            if quiet_until(quiet, now) is not None:
                continue
            stories = [s for s in (self._store.story(i) for i in story_ids) if s is not None]
            for story_id in set(story_ids) - {s.id for s in stories}:
                self._store.drop_alert(story_id, channel)
            by_id = {s.id: s for s in stories}
            if len(stories) <= (quiet.one_by_one_up_to if quiet is not None else 3):
                for story_id in self._store.claim_held(channel, list(by_id), RELEASING, now):
                    self._deliver(by_id[story_id], channel, releasing=True)
                    released += 1
            else:
                rollup_id = uuid.uuid4().hex[:16]
                claimed = self._store.begin_rollup(rollup_id, channel, list(by_id), now)
                if claimed:
                    released += self._print_rollup(rollup_id, channel, claimed)
        return released

    def _print_rollup(self, rollup_id: str, channel: str, story_ids: list[str]) -> int:
        stories = sorted((s for s in (self._store.story(i) for i in story_ids) if s is not None),
                         key=lambda s: (-s.carried_by, s.id))
        quiet = self._settings.slack.quiet_hours_for(channel)
        lines = [f"[newsradar] 조용한 시간 동안 보류된 새 기사 {len(stories)}건 · {channel}"
                 + (f" · 방해 금지 {describe(quiet)}" if quiet else "")]
        for story in stories:
            lines.append(f"- {plain(story.lead.title)[: fmt.HEADLINE_CHARS]} — {story.carried_by}개 매체 "
                         f"({', '.join(plain(o) for o in story.outlets[:5])}) · {fmt.reader_url(story.lead.url) or ''}")
        text = "\n".join(lines) + "\n"
        path = self._dir / f"rollup-{rollup_id}--{safe_name(channel, 'channel')}.txt"
        try:
            write_atomic(path, text)
        except OSError as exc:
            raise PermanentError(f"console alerts: cannot write {path}: {exc.strerror or exc}") from None
        print(text, file=self._out or sys.stdout, flush=True)
        self._store.finish_rollup(rollup_id, str(path), {s.id: s.carried_by for s in stories})
        return len(stories)


def _holds(path: Path, story_id: str) -> bool:
    try:
        return f"story: {story_id}" in path.read_text(encoding="utf-8")
    except OSError:
        return False


class DigestFiles:
    """DigestTransport without SMTP: writes the HTML and text versions and prints the text."""

    def __init__(self, state_dir: Path, out: TextIO | None = None) -> None:
        self._dir = state_dir / "digests"
        self._out = out

    def paths(self, digest: Digest) -> tuple[Path, Path]:
        stem = f"{safe_name(digest.day, 'day')}--{safe_name(digest.recipient, 'recipient')}"
        return self._dir / f"{stem}.html", self._dir / f"{stem}.txt"

    def deliver(self, digest: Digest, sender: str) -> str:
        """Write both files (atomically) and print the text; PermanentError if the disk refuses."""
        html_path, text_path = self.paths(digest)
        try:
            write_atomic(html_path, html_with_chart_file(digest, html_path))
            write_atomic(text_path, f"Subject: {digest.subject}\nTo: {digest.recipient}\n\n{digest.text}")
        except OSError as exc:
            raise PermanentError(f"digest files: cannot write under {self._dir}: {exc.strerror or exc}") from None
        print(f"Subject: {digest.subject}\nTo: {digest.recipient}\n\n{digest.text}", file=self._out or sys.stdout,
              flush=True)
        return str(html_path)
