"""Slack alerts: one message per new story per channel, edited in place as more outlets carry it.

Design choices:
- **Edit, not thread.** When copies arrive we ``chat.update`` the original message so it reads
  "N개 매체 보도 (carried by N outlets)" with the outlet list: one tidy message per story instead of
  a thread of "+1 outlet" replies nobody opens. Edits are coalesced: ``add`` keeps only the latest
  state of each story, so a burst of copies costs at most one edit per story per ``flush``.
- **Outbox idempotency.** ``record_alert(state='pending')`` before ``chat.postMessage`` and
  ``'sent'`` with ref ``"<channel id>/<ts>"`` after (chat.update and conversations.history need
  the channel *id*, which Slack returns from the post). Each post carries message ``metadata``
  with the story id; a 'pending' record found later (crash between post and record, or a timeout
  after Slack had accepted the post) is reconciled by looking for that metadata in
  ``conversations.history`` and adopting the message before deciding to post again.
- **Webhook mode** (an incoming-webhook URL instead of a bot token) cannot edit, route or read
  history: each story is posted once to the webhook's own channel (store key ``"webhook"``), never
  updated; a 'pending' record there is re-posted (a rare duplicate beats a missed story).
- **Retries live upstream.** slack-sdk's retry handlers are switched off (``retry_handlers=[]``):
  429/5xx/timeouts raise TransientError(retry_after) and the daemon's one retry loop decides.
- At most one message per ``min_interval`` seconds per channel (a per-channel clock).
"""

from __future__ import annotations

import http.client
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.error import URLError

from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse, WebClient
from slack_sdk.webhook import WebhookClient, WebhookResponse

from newsradar.errors import PermanentError, TransientError
from newsradar.events import Story, StoryUpdate
from newsradar.settings import Settings
from newsradar.store import StateStore
from notifiers import slack_format as fmt

log = logging.getLogger(__name__)

WEBHOOK_CHANNEL = "webhook"
HISTORY_LIMIT = 200  # "recent messages" searched when reconciling a pending post
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")
_TRANSIENT = {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
              "request_timeout"}
# Errors about the credentials or workspace, not one channel: every further call would fail too.
_GLOBAL = {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
           "no_permission", "missing_scope", "not_allowed_token_type", "org_login_required",
           "ekm_access_denied", "invalid_token", "no_service", "no_team", "team_disabled", "action_prohibited"}
_MESSAGE_GONE = {"message_not_found", "cant_update_message", "edit_window_closed", "msg_too_long"}


class _ChannelFailed(PermanentError):
    """A permanent failure confined to one (story, channel); other deliveries go on."""


class _Redactor(logging.Filter):
    """Scrubs the token and webhook URL out of slack-sdk's own log records (its DEBUG lines print URLs)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(s in message for s in self.secrets):
            record.msg, record.args = redact(message, list(self.secrets)), ()
        return True


_SDK_LOG = logging.getLogger(f"{__name__}.sdk")
_REDACTOR = _Redactor()
_SDK_LOG.addFilter(_REDACTOR)


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


class SlackNotifier:
    """AlertSink posting to Slack through a bot token (Web API) or an incoming webhook."""

    def __init__(self, settings: Settings, store: StateStore, *, token: str | None = None,
                 webhook_url: str | None = None) -> None:
        if not token and not webhook_url:
            raise PermanentError("SlackNotifier needs a bot token or an incoming-webhook URL")
        self._settings = settings
        self._slack = settings.slack
        self._store = store
        self._secrets = [token or "", webhook_url or ""]
        _REDACTOR.secrets.update(s for s in self._secrets if s)
        sdk_log = _SDK_LOG
        self._web: WebClient | None = None
        self._hook: WebhookClient | None = None
        if token:
            self._web = WebClient(token=token, base_url=self._slack.base_url, timeout=self._slack.timeout,  # type: ignore[arg-type]
                                  retry_handlers=[], logger=sdk_log)
            self._secret_hint = f"${self._slack.token_env}"
        else:
            self._hook = WebhookClient(webhook_url or "", timeout=self._slack.timeout,  # type: ignore[arg-type]
                                       retry_handlers=[], logger=sdk_log)
            self._secret_hint = f"${self._slack.webhook_url_env}"
        self._buffer: dict[str, StoryUpdate] = {}
        self._next_ok: dict[str, float] = {}
        self._channel_ids: dict[str, str] = {}

    @property
    def mode(self) -> str:
        return "bot" if self._web is not None else "webhook"

    def channels(self, story: Story) -> list[str]:
        """The store keys (channels) this story is delivered to."""
        if self._web is None:
            return [WEBHOOK_CHANNEL]
        return fmt.channels_for(story, self._slack, self._settings.watchlist.rules)

    def add(self, update: StoryUpdate) -> None:
        """Buffer an update; several updates of one story collapse into its most complete state."""
        held = self._buffer.get(update.story.id)
        if held is None or update.story.copies >= held.story.copies:
            self._buffer[update.story.id] = update

    def flush(self) -> None:
        """Deliver everything buffered; see AlertSink.flush for the error contract."""
        failures: list[str] = []
        for story_id in list(self._buffer):
            story = self._buffer[story_id].story
            for channel in self.channels(story):
                try:
                    self._deliver(story, channel)
                except _ChannelFailed as exc:
                    log.error("slack: story %s not delivered to %s: %s", story.id, channel, exc)
                    failures.append(str(exc))
            del self._buffer[story_id]
        if failures:
            raise PermanentError(f"{len(failures)} Slack deliveries failed: " + "; ".join(failures[:5]))

    def close(self) -> None:
        """Forget unflushed updates (their bus deliveries were not acked, so they come back)."""
        if self._buffer:
            log.warning("slack: closing with %d unflushed story updates", len(self._buffer))
        self._buffer.clear()

    # -- delivery ---------------------------------------------------------------------------
    def _deliver(self, story: Story, channel: str) -> None:
        record = self._store.alert(story.id, channel)
        if record is not None and record[0] == "pending":
            ref = self._reconcile(story, channel)
            if ref is not None:
                log.info("slack: adopted existing message %s for story %s in %s", ref, story.id, channel)
                self._store.record_alert(story.id, channel, "sent", ref, record[2])
                record = ("sent", ref, record[2])
        if record is None or record[0] != "sent":
            self._post(story, channel)
        elif story.carried_by > record[2]:
            self._edit(story, channel, record[1] or "")

    def _post(self, story: Story, channel: str) -> None:
        self._store.record_alert(story.id, channel, "pending", None, story.carried_by)
        text, blocks = fmt.fallback_text(story), fmt.story_blocks(story, self._settings.timezone)
        if self._hook is not None:
            hook = self._hook
            with self._throttle(channel):
                self._webhook_call(lambda: hook.send(text=text, blocks=blocks, unfurl_links=False, unfurl_media=False))
            self._store.record_alert(story.id, channel, "sent", WEBHOOK_CHANNEL, story.carried_by)
            return
        web = self._client()
        with self._throttle(channel):
            response = self._api(
                "chat.postMessage", channel,
                lambda: web.chat_postMessage(channel=channel, text=text, blocks=blocks, metadata=fmt.metadata(story),
                                             unfurl_links=False, unfurl_media=False, link_names=False),
            )
        channel_id, ts = str(response.get("channel") or channel), str(response["ts"])
        self._channel_ids[channel] = channel_id
        self._store.record_alert(story.id, channel, "sent", f"{channel_id}/{ts}", story.carried_by)

    def _edit(self, story: Story, channel: str, ref: str) -> None:
        if self._web is None:
            return  # webhooks cannot edit; the first post stands (see module docstring)
        web = self._web
        channel_id, _, ts = ref.rpartition("/")
        channel_id = channel_id or self._resolve(channel)
        text, blocks = fmt.fallback_text(story), fmt.story_blocks(story, self._settings.timezone)
        try:
            with self._throttle(channel):
                self._api("chat.update", channel, lambda: web.chat_update(
                    channel=channel_id, ts=ts, text=text, blocks=blocks, metadata=fmt.metadata(story)))
        except _ChannelFailed as exc:
            if not any(code in str(exc) for code in _MESSAGE_GONE):
                raise
            # Someone deleted the message or it can no longer be edited: do not re-post, do not loop.
            log.warning("slack: cannot edit alert %s for story %s in %s: %s", ref, story.id, channel, exc)
        self._store.record_alert(story.id, channel, "sent", ref, story.carried_by)

    def _reconcile(self, story: Story, channel: str) -> str | None:
        """The ref of a message already carrying this story's metadata, or None to post (again)."""
        if self._web is None:
            log.warning("slack: webhook alert for story %s may or may not have been posted "
                        "(webhooks cannot read history); posting again", story.id)
            return None
        web = self._web
        channel_id = self._resolve(channel)
        try:
            response = self._api("conversations.history", channel, lambda: web.conversations_history(
                channel=channel_id, include_all_metadata=True, limit=HISTORY_LIMIT))
        except PermanentError as exc:  # e.g. missing_scope (channels:history): better a rare duplicate than a miss
            log.warning("slack: cannot read history of %s to reconcile story %s (%s); posting again",
                        channel, story.id, exc)
            return None
        for message in response.get("messages") or []:
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == fmt.EVENT_TYPE and payload.get("story_id") == story.id:
                return f"{channel_id}/{message.get('ts')}"
        return None

    def _resolve(self, channel: str) -> str:
        """Channel id for a configured name; history and edits need the id (posts accept names)."""
        if channel in self._channel_ids:
            return self._channel_ids[channel]
        if _CHANNEL_ID.fullmatch(channel):
            return channel
        web, name, cursor = self._client(), channel.lstrip("#"), ""
        for _ in range(20):  # pages of 1000 channels
            try:
                page = self._api("conversations.list", channel, lambda c=cursor: web.conversations_list(  # type: ignore[misc]
                    types="public_channel,private_channel", exclude_archived=True, limit=1000, cursor=c))
            except PermanentError as exc:  # e.g. missing_scope (channels:read)
                log.warning("slack: cannot look up the id of %s (%s); configure channel ids instead", channel, exc)
                return channel
            for found in page.get("channels") or []:
                if found.get("name") == name:
                    self._channel_ids[channel] = str(found["id"])
                    return self._channel_ids[channel]
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                break
        return channel

    @contextmanager
    def _throttle(self, channel: str) -> Iterator[None]:
        """Per-channel clock: the next call to this channel starts min_interval after this one *ended*."""
        wait = self._next_ok.get(channel, 0.0) - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        try:
            yield
        finally:
            self._next_ok[channel] = time.monotonic() + self._slack.min_interval

    def _client(self) -> WebClient:
        assert self._web is not None, "Web API call in webhook mode"
        return self._web

    # -- error mapping ----------------------------------------------------------------------
    def _api(self, method: str, channel: str, call: Callable[[], SlackResponse]) -> SlackResponse:
        try:
            return call()
        except SlackApiError as exc:
            raise self._api_error(method, channel, exc.response) from None
        except (TimeoutError, URLError, http.client.HTTPException, OSError) as exc:
            reason = redact(f"{type(exc).__name__}: {exc}", self._secrets)
            raise TransientError(f"Slack {method} ({channel}): network error: {reason}") from None

    def _api_error(self, method: str, channel: str, response: SlackResponse) -> Exception:
        error = str((response.data or {}).get("error", "")) if isinstance(response.data, dict) else ""
        return _classify(method, channel, response.status_code, error or f"HTTP {response.status_code}",
                         response.headers or {}, self._secret_hint)

    def _webhook_call(self, call: Callable[[], WebhookResponse]) -> None:
        try:
            response = call()
        except (TimeoutError, URLError, http.client.HTTPException, OSError) as exc:
            reason = redact(f"{type(exc).__name__}: {exc}", self._secrets)
            raise TransientError(f"Slack incoming webhook: network error: {reason}") from None
        if response.status_code == 200:
            return
        body = redact((response.body or "").strip()[:200], self._secrets)
        reason = body or f"HTTP {response.status_code}"
        raise _classify("incoming webhook", WEBHOOK_CHANNEL, response.status_code, reason,
                        response.headers or {}, self._secret_hint)


def _classify(method: str, channel: str, status: int, error: str, headers: Any, hint: str) -> Exception:
    """Slack's answer as our error tree: 429/5xx/ratelimited are transient, credential errors global."""
    where = f"Slack {method} ({channel})"
    if status == 429 or error in ("ratelimited", "rate_limited"):
        return TransientError(f"{where}: rate limited ({error})", retry_after=_retry_after(headers))
    if status >= 500 or error in _TRANSIENT:
        return TransientError(f"{where}: Slack unavailable ({error})", retry_after=_retry_after(headers))
    if error in _GLOBAL:
        return PermanentError(f"{where}: Slack rejected our credentials ({error}); check {hint}")
    return _ChannelFailed(f"{where}: {error}")


def _retry_after(headers: Any) -> float | None:
    value = None
    for key in ("Retry-After", "retry-after"):
        raw = headers.get(key) if hasattr(headers, "get") else None
        if isinstance(raw, list):
            raw = raw[0] if raw else None
        if raw is not None:
            value = raw
            break
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None
