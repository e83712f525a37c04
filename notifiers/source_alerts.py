"""Source-health messages to the ops channel: one when a source breaks, one when it recovers.

The collector stage queues each message in the state store together with the transition that caused it
(newsradar/source_health.py); this sender delivers the queue, oldest first, and never decides anything.
Idempotency is the story alerts' outbox: a queued alert is claimed ('pending', atomically, so that two
senders on different hosts never both take it) before the send and marked 'sent' with its ref after. A
'pending' alert found later (a crash, or a timeout after Slack accepted the post) is taken again at once by
the host that claimed it, by another only after ``CLAIM_LEASE``, and looked up in the channel's history by
the alert id carried as message metadata before anything is posted again. Without a bot token and channel
it uses an ops incoming webhook (no history: a rare duplicate beats a missed alert), and without either it
prints the message and keeps it as a file under ``{state_dir}/ops/``.
The next digest lists the same alerts (``describe``) in a "소스 상태" section.
"""

from __future__ import annotations

import http.client
import logging
import socket
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO
from urllib.error import URLError

from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse, WebClient
from slack_sdk.webhook import WebhookClient

from newsradar.errors import PermanentError, TransientError
from newsradar.settings import Settings, secret
from newsradar.store import SourceAlert, StateStore
from notifiers import slack_format as fmt
from notifiers.console import plain, safe_name, write_atomic
from notifiers.slack import _CHANNEL_ID, _REDACTOR, _SDK_LOG, HISTORY_LIMIT, _classify, redact

log = logging.getLogger(__name__)

EVENT_TYPE = "newsradar_source_alert"
ICONS = {"failing": "⚠️", "silent": "🔇", "recovered": "✅"}
# How long another host waits before taking over a send this one began (it may still be posting).
CLAIM_LEASE = timedelta(minutes=5)


def describe(alert: SourceAlert, zone: str) -> str:
    """One Korean line for an alert (the Slack message's first line, the digest's line); plain text."""
    source = plain(alert.source)[:120]
    since = fmt.local_time(alert.since, zone) if alert.since else "-"
    if alert.kind == "failing":
        return f"{ICONS['failing']} 소스 장애: {source} — {alert.failures}회 연속 수집 실패 ({since}부터)"
    if alert.kind == "silent":
        last = fmt.local_time(alert.last_item_at, zone) if alert.last_item_at else "포착 이력 없음"
        return f"{ICONS['silent']} 소스 침묵: {source} — 예상 주기보다 오래 새 기사가 없습니다 (마지막 새 기사: {last})"
    took = _duration(alert.created_at - alert.since) if alert.since else ""
    tail = f" (장애 {took})" if took else ""
    return f"{ICONS['recovered']} 소스 복구: {source} — 다시 정상적으로 수집합니다{tail}"


def message(alert: SourceAlert, zone: str) -> str:
    """The whole ops message: the line, the last error for a failing source, and where to look."""
    lines = [f"[newsradar] {describe(alert, zone)}"]
    if alert.kind == "failing" and alert.detail:
        lines.append(f"마지막 오류: {plain(alert.detail)[:300]}")
    if alert.kind != "recovered":
        lines.append("대시보드의 '소스' 화면에서 상태를 볼 수 있습니다. 복구되면 한 번 더 알립니다.")
    return "\n".join(lines)


def _duration(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}일" if days else "", f"{hours}시간" if hours else "", f"{mins}분" if mins or not (days or hours)
             else ""]
    return " ".join(p for p in parts if p)


class SourceAlertSender:
    """Delivers queued source alerts to the ops channel (bot token), an ops webhook, or the console."""

    def __init__(self, settings: Settings, store: StateStore, out: TextIO | None = None) -> None:
        self._settings = settings
        self._store = store
        self._out = out
        self.owner = socket.gethostname()  # claims: this host's restart takes its own interrupted sends back at once
        ops = settings.source_health
        token, hook = secret(settings.slack.token_env), secret(ops.webhook_url_env)
        self._secrets = [token or "", hook or ""]
        _REDACTOR.secrets.update(s for s in self._secrets if s)
        self._web: WebClient | None = None
        self._hook: WebhookClient | None = None
        self._channel = ops.channel
        self._channel_id: str | None = None
        if token and ops.channel:
            self._web = WebClient(token=token, base_url=settings.slack.base_url, timeout=int(settings.slack.timeout),
                                  retry_handlers=[], logger=_SDK_LOG)
            self.mode, self._hint = "slack", f"${settings.slack.token_env}"
        elif hook:
            self._hook = WebhookClient(hook, timeout=int(settings.slack.timeout), retry_handlers=[], logger=_SDK_LOG)
            self.mode, self._hint = "webhook", f"${ops.webhook_url_env}"
        else:
            self.mode, self._hint = "console", ""

    @property
    def folder(self) -> Path:
        return self._settings.state_path / "ops"

    def flush(self) -> int:
        """Send every queued alert, oldest first; returns how many went out now.

        Raises TransientError (try again later; nothing is sent twice) or PermanentError (bad token,
        unknown channel: fix the configuration). Alerts delivered before the error stay recorded.
        """
        sent = 0
        for alert in self._store.source_alerts_to_send():
            if not self._store.claim_source_alert(alert.id, self.owner, datetime.now(timezone.utc), CLAIM_LEASE):
                log.info("source alert %s: another sender holds it; leaving it", alert.id)
                continue
            ref = self._reconcile(alert) if alert.state == "pending" else None
            if ref is None:
                ref = self._send(alert)
            self._store.mark_source_alert_sent(alert.id, ref, datetime.now(timezone.utc))
            log.info("source alert %s delivered (%s)", alert.id, self.mode)
            sent += 1
        return sent

    # -- delivery -------------------------------------------------------------------------------------------
    def _send(self, alert: SourceAlert) -> str:
        text = message(alert, self._settings.timezone)
        if self._web is not None:
            web, channel = self._web, self._channel or ""
            response = self._api("chat.postMessage", lambda: web.chat_postMessage(
                channel=channel, text=fmt.escape(text), metadata={"event_type": EVENT_TYPE,
                                                                  "event_payload": {"alert_id": alert.id}},
                unfurl_links=False, unfurl_media=False, link_names=False, mrkdwn=False))
            self._channel_id = str(response.get("channel") or self._channel_id or "")
            return f"{response.get('channel')}/{response.get('ts')}"
        if self._hook is not None:
            hook = self._hook
            try:
                answer = hook.send(text=fmt.escape(text), unfurl_links=False, unfurl_media=False)
            except (TimeoutError, URLError, http.client.HTTPException, OSError) as exc:
                raise TransientError(f"ops webhook: network error: {redact(str(exc), self._secrets)}") from None
            if answer.status_code != 200:
                raise _classify("incoming webhook", "ops", answer.status_code,
                                redact((answer.body or "")[:200], self._secrets) or f"HTTP {answer.status_code}",
                                answer.headers or {}, self._hint)
            return "webhook"
        path = self.folder / f"{safe_name(alert.source, 'source')}--{safe_name(alert.kind, 'kind')}--" \
                             f"{int((alert.since or alert.created_at).timestamp())}.txt"
        try:
            write_atomic(path, f"{text}\nalert: {alert.id}\n")
        except OSError as exc:
            raise PermanentError(f"source alerts: cannot write {path}: {exc.strerror or exc}") from None
        print(text, file=self._out or sys.stdout, flush=True)
        return str(path)

    def _reconcile(self, alert: SourceAlert) -> str | None:
        """The ref of a message already carrying this alert, or None to send (again)."""
        if self._web is None:
            if self._hook is not None:
                log.warning("source alert %s may already have been posted (webhooks cannot read history); "
                            "posting again", alert.id)
            return None
        web, channel = self._web, self._resolve()
        try:
            response = self._api("conversations.history", lambda: web.conversations_history(
                channel=channel, include_all_metadata=True, limit=HISTORY_LIMIT))
        except PermanentError as exc:
            log.warning("source alert %s: cannot read the history of %s (%s); posting again", alert.id,
                        self._channel, exc)
            return None
        for found in response.get("messages") or []:
            meta = found.get("metadata") or {}
            if meta.get("event_type") == EVENT_TYPE and (meta.get("event_payload") or {}).get("alert_id") == alert.id:
                return f"{channel}/{found.get('ts')}"
        return None

    def _resolve(self) -> str:
        """The ops channel's id (history wants ids; posts accept names)."""
        if self._channel_id:
            return self._channel_id
        channel = self._channel or ""
        if _CHANNEL_ID.fullmatch(channel) or self._web is None:
            return channel
        web = self._web
        try:
            page = self._api("conversations.list", lambda: web.conversations_list(
                types="public_channel,private_channel", exclude_archived=True, limit=1000))
        except PermanentError:
            return channel
        for found in page.get("channels") or []:
            if found.get("name") == channel.lstrip("#"):
                self._channel_id = str(found["id"])
                return self._channel_id
        return channel

    def _api(self, method: str, call: Callable[[], SlackResponse]) -> SlackResponse:
        try:
            return call()
        except SlackApiError as exc:
            response = exc.response
            error = str((response.data or {}).get("error", "")) if isinstance(response.data, dict) else ""
            raise _classify(method, self._channel or "ops", response.status_code,
                            error or f"HTTP {response.status_code}", response.headers or {}, self._hint) from None
        except (TimeoutError, URLError, http.client.HTTPException, OSError) as exc:
            reason = redact(f"{type(exc).__name__}: {exc}", self._secrets)
            raise TransientError(f"Slack {method} (ops): network error: {reason}") from None
