"""The daily digest in Slack: the email's selection as Block Kit, once per day per channel, across restarts.

Each channel of ``digest.slack_channels`` gets everything since the digest last *delivered* to it (the store's
digests table, key ``slack:<channel>``), filtered by its subscription: a header, one section per term with its
stories most-carried first (headline linked, outlets, "N개 매체"), the earlier (never alerted) stories apart,
and a context line with the period and the trend in words. A message holds at most 50 blocks and a section
3,000 characters; a longer digest goes out as numbered parts "(1/3)". The trend chart follows as an image
when the bot token may upload files (files:write); otherwise the words stand alone.

Once per day per channel also across hosts: the digest is claimed in the store first (notifiers/claims.py;
the claim is renewed before each part, and taken over only when its holder has been silent for DIGEST_LEASE).
Outbox, as for alerts: the digest is recorded 'pending' with its cut-off before the first part, each part
'pending' before and 'sent' after its post (a pending part is looked up by its metadata in the channel's
history before it is posted again), and the digest 'sent' at the end. A restart resumes with the same
cut-off, so the parts it still has to send are the ones it would have sent. Without Slack, the messages are
printed and written to ``{state_dir}/digests/{day}--slack-{channel}.json`` (the chart beside it as .png).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime, timedelta
from typing import Any, TextIO

from newsradar.errors import PermanentError, TransientError
from newsradar.settings import Settings, secret
from newsradar.store import StateStore
from notifiers import slack_blocks as kit
from notifiers import slack_format as fmt
from notifiers.claims import DIGEST_LEASE
from notifiers.console import safe_name, write_atomic
from notifiers.digest import DigestMailer, Selection, send_each
from notifiers.slack import SlackNotifier
from notifiers.trend import trend_lines

log = logging.getLogger(__name__)

KEY_PREFIX = "slack:"  # digests-table recipient key of a Slack channel
SECTIONS_PER_MESSAGE = fmt.MAX_BLOCKS - 3  # the rest: header, period, trend in words
Message = tuple[str, list[dict[str, Any]]]  # (fallback text, blocks)


def digest_messages(chosen: Selection, day: str, trend: list[str], zone: str) -> list[Message]:
    """The digest as one or more messages, each within Slack's limits, parts numbered when more than one."""
    sections: list[str] = []
    for group in chosen.groups:
        sections += _term_sections(f"*{fmt.safe_inline(group.term)}* ({len(group.stories)}건)",
                                   [kit.story_line(s, zone) for s in group.stories])
    if chosen.earlier:
        title = f"*이전 기사* ({len(chosen.earlier)}건 · 오래전에 처음 보도되어 알림은 보내지 않은 기사)"
        sections += _term_sections(title, [kit.story_line(s, zone) for s in chosen.earlier])
    if not sections:
        sections = ["새로 포착된 기사가 없습니다. (newsradar는 정상 작동 중입니다)"]
    chunks = [sections[i:i + SECTIONS_PER_MESSAGE] for i in range(0, len(sections), SECTIONS_PER_MESSAGE)]
    period = (f"기간: {fmt.local_time(chosen.since, zone)} ~ {fmt.local_time(chosen.until, zone)} · "
              "매체 수가 많은 순 · 여러 키워드에 걸린 기사는 첫 키워드 아래 한 번만")
    messages: list[Message] = []
    for number, chunk in enumerate(chunks, 1):
        part = f" ({number}/{len(chunks)})" if len(chunks) > 1 else ""
        title = f"newsradar 뉴스 다이제스트 — {day} ({chosen.count}건){part}"
        blocks = [kit.header(title), *(kit.section(text) for text in chunk), kit.context(period)]
        if number == len(chunks) and trend:
            blocks.append(kit.context(fmt.escape("\n".join(trend))))
        messages.append((fmt.clip(title, fmt.FALLBACK_LIMIT), blocks))
    return messages


def _term_sections(title: str, lines: list[str]) -> list[str]:
    """A term's title and its story lines as sections of at most 3,000 characters ("(계속)" on the rest)."""
    texts = kit.pack(lines, fmt.SECTION_LIMIT - len(title) - 8)
    return [f"{title}{' (계속)' if i else ''}\n{text}" for i, text in enumerate(texts)]


def part_metadata(day: str, channel: str, part: str) -> dict[str, Any]:
    """Lets a restarted digest find a part it posted before a crash in conversations.history."""
    return {"event_type": kit.DIGEST_EVENT, "event_payload": {"part_key": f"{day}/{channel}/{part}"}}


class SlackDigest:
    """Posts the daily digest to each of ``digest.slack_channels`` at most once per local day."""

    def __init__(self, settings: Settings, store: StateStore, mailer: DigestMailer, poster: SlackNotifier | None,
                 out: TextIO | None = None) -> None:
        self._settings = settings
        self._store = store
        self._mailer = mailer
        self._poster = poster
        self._out = out
        self._dir = settings.state_path / "digests"

    def channels(self) -> list[str]:
        """The configured digest channels, in order, without repeats."""
        return list(dict.fromkeys(self._settings.digest.slack_channels))

    def due(self, now: datetime) -> list[str]:
        """Channels whose digest for today is not yet delivered, once the local send time has passed."""
        if not self._mailer.past_send_time(now):
            return []
        day = self._mailer.day(now)
        return [c for c in self.channels() if self._store.digest_state(day, KEY_PREFIX + c) != "sent"]

    def send_due(self, now: datetime) -> list[str]:
        """Post to every due channel; one failing channel does not stop the others (errors as DigestMailer)."""
        return send_each(self.due(now), lambda channel: self.send(channel, now), "Slack digest", "posted")

    def send(self, channel: str, now: datetime) -> bool:
        """Post today's digest to one channel unless already delivered, or being posted by another notifier
        (which holds the store's claim); True if it went out now."""
        key = KEY_PREFIX + channel
        day = self._mailer.day(now)
        cutoff = self._claim(day, key, now)
        if cutoff is None:
            return False
        try:  # a resumed digest (its poster died) keeps the first claim's cut-off, hence its selection
            chosen = self._mailer.select(key, cutoff, subscriber=channel)
            data = self._mailer.trend(cutoff, channel)
            messages = digest_messages(chosen, day, trend_lines(data), self._settings.timezone)
            chart = self._mailer.chart(data)
            self._store.record_digest(day, key, "pending", cutoff=cutoff, sent_at=None)
            if self._poster is None:
                where = self._write(day, channel, messages, chart)
            else:
                where = self._post(day, key, channel, messages, chart, now)
            self._store.record_digest(day, key, "sent", cutoff=cutoff, sent_at=now)
        finally:
            self._store.release_digest(day, key, self._mailer.owner)
        log.info("Slack digest %s for %s: %d stories in %d message(s) (%s)", day, channel, chosen.count,
                 len(messages), where)
        return True

    def _claim(self, day: str, key: str, now: datetime) -> datetime | None:
        """Claim (or renew the claim on) the digest of ``day`` for ``key``; its cut-off, or None."""
        return self._store.claim_digest(day, key, self._mailer.owner, now, now, now - DIGEST_LEASE)

    def _post(self, day: str, key: str, channel: str, messages: list[Message], chart: bytes | None,
              now: datetime) -> str:  # fmt: skip
        assert self._poster is not None
        poster = self._poster
        started = time.monotonic()
        for number, (text, blocks) in enumerate(messages, 1):
            part = str(number)
            renewed = now + timedelta(seconds=time.monotonic() - started)  # the caller's clock, moved on
            if number > 1 and self._claim(day, key, renewed) is None:  # renewed per part; lost only past the lease
                raise TransientError(f"Slack digest {day} for {channel}: another notifier took the claim over")
            state = self._store.digest_part(day, key, part)
            if state is not None and state[0] == "sent":
                continue
            meta = part_metadata(day, channel, part)
            ref = None
            if state is not None:  # pending: a crash may have come after Slack accepted it
                ref = poster.find_message(channel, kit.DIGEST_EVENT, "part_key", meta["event_payload"]["part_key"])
            if ref is None:
                self._store.record_digest_part(day, key, part, "pending", None)
                ref = poster.post_message(channel, text, blocks, meta)
            self._store.record_digest_part(day, key, part, "sent", ref)
        if chart is not None and poster.can_upload:
            self._upload_chart(day, key, channel, chart)
        return f"{len(messages)} part(s) in {channel}"

    def _upload_chart(self, day: str, key: str, channel: str, chart: bytes) -> None:
        """At most once: a chart whose upload was interrupted is not uploaded again (the text trend stands)."""
        state = self._store.digest_part(day, key, "chart")
        if state is not None:
            if state[0] == "pending":
                log.warning("Slack digest %s for %s: the chart upload was interrupted; not uploading it twice",
                            day, channel)
                self._store.record_digest_part(day, key, "chart", "skipped", None)
            return
        self._store.record_digest_part(day, key, "chart", "pending", None)
        try:
            ref = self._poster.upload(channel, chart, f"newsradar-trend-{day}.png",  # type: ignore[union-attr]
                                      f"최근 {self._settings.digest.chart_days}일 키워드 추이 ({day})",
                                      "키워드별 하루 스토리 수와 보도 매체 수 그래프")
        except TransientError:
            self._store.record_digest_part(day, key, "chart", "failed", None)
            raise
        except PermanentError as exc:  # e.g. missing_scope: the token may not upload files
            log.warning("Slack digest %s for %s: chart not uploaded (%s); add the files:write scope to show it",
                        day, channel, exc)
            self._store.record_digest_part(day, key, "chart", "skipped", None)
            return
        self._store.record_digest_part(day, key, "chart", "sent", ref)

    def _write(self, day: str, channel: str, messages: list[Message], chart: bytes | None) -> str:
        """No Slack: print the digest and keep its Block Kit as JSON (and the chart) under var/digests."""
        path = self._dir / f"{safe_name(day, 'day')}--slack-{safe_name(channel, 'channel')}.json"
        try:
            write_atomic(path, json.dumps({"channel": channel, "messages": [
                {"text": text, "blocks": blocks} for text, blocks in messages]}, ensure_ascii=False, indent=1))
            if chart is not None:
                path.with_suffix(".png").write_bytes(chart)
        except OSError as exc:
            raise PermanentError(f"Slack digest files: cannot write under {self._dir}: {exc.strerror or exc}") from None
        out = self._out or sys.stdout
        for text, blocks in messages:
            body = [b["text"]["text"] for b in blocks if b["type"] == "section"]
            body += [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
            print(f"[Slack 다이제스트 → {channel}] {text}\n" + "\n".join(body) + "\n", file=out, flush=True)
        return str(path)


def slack_digester(settings: Settings, store: StateStore, mailer: DigestMailer | None = None) -> SlackDigest:
    """Posts with the bot token (or webhook) when one is set, else writes files under var/digests."""
    from notifiers import digest_mailer

    token, webhook = secret(settings.slack.token_env), secret(settings.slack.webhook_url_env)
    poster = SlackNotifier(settings, store, token=token, webhook_url=None if token else webhook) if (
        token or webhook) else None
    return SlackDigest(settings, store, mailer or digest_mailer(settings, store), poster)
