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
  ``conversations.history`` and adopting the message before deciding to post again. A flush's first
  alerts go out in batches of up to POST_BATCH: one commit takes their leases and writes their 'pending'
  records (``claim_alerts``), one after the posts writes 'sent' and frees the leases (``settle_alerts``),
  so a burst of alerts does not queue for the state store's write lock once per record.
- **Webhook mode** (an incoming-webhook URL instead of a bot token) cannot edit, route or read
  history: each story is posted once to the webhook's own channel (store key ``"webhook"``), never
  updated; a 'pending' record there is re-posted (a rare duplicate beats a missed story).
- **Retries live upstream.** slack-sdk's retry handlers are switched off (``retry_handlers=[]``):
  429/5xx/timeouts raise TransientError(retry_after) and the daemon's one retry loop decides.
- At most one message per ``min_interval`` seconds per channel (a per-channel clock).
- **Quiet hours hold, never drop** (issue 18). A first alert that falls in its channel's quiet window is
  recorded 'held' and not sent; copies arriving meanwhile only update the story record. ``release_due`` (the
  daemon calls it every few seconds and after each flush) sends what is held once the window is over: one by
  one when there are ``one_by_one_up_to`` or fewer, else ONE roll-up message built from the current story
  records, so the copies that arrived meanwhile are counted. Each release is first *claimed* in the store
  (``claim_held`` / ``begin_rollup``, one conditional write), so notifiers on several hosts never send a held
  story twice; a roll-up or post whose claimer died is taken over after RELEASE_LEASE and looked up by its
  metadata in the channel's history before it is posted. A later copy of a rolled-up story edits the roll-up.
"""

from __future__ import annotations

import http.client
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.error import URLError

from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web import SlackResponse, WebClient
from slack_sdk.webhook import WebhookClient, WebhookResponse

from newsradar.errors import PermanentError, TransientError
from newsradar.events import Story, StoryUpdate
from newsradar.settings import Settings
from newsradar.store import StateStore
from notifiers import claims, slack_blocks
from notifiers import slack_format as fmt
from notifiers.claims import RELEASE_LEASE, RELEASING
from notifiers.quiet import describe, quiet_until

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
ALERT_LEASE = timedelta(minutes=2)  # longer than one post with its retries; a dead poster's lease runs out
POST_BATCH = 20  # first alerts claimed in one commit...
# ...but no more than min_interval lets go out in this many seconds: a crash mid-batch leaves the untried ones
# 'pending', and each is then looked up in its channel's history before it is posted again.
BATCH_SECONDS = 5.0
_MESSAGE_GONE = {"message_not_found", "cant_update_message", "edit_window_closed", "msg_too_long"}
DEFAULT_ONE_BY_ONE = 3


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


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



def _failed(story: Story, channel: str, exc: Exception, failures: list[str]) -> None:
    """A channel's failure for one story: logged, and kept for the flush to report (the other channels go on)."""
    log.error("slack: story %s not delivered to %s: %s", story.id, channel, exc)
    failures.append(str(exc))


class SlackNotifier:
    """AlertSink posting to Slack through a bot token (Web API) or an incoming webhook."""

    def __init__(self, settings: Settings, store: StateStore, *, token: str | None = None,
                 webhook_url: str | None = None, clock: Callable[[], datetime] = _utcnow) -> None:
        if not token and not webhook_url:
            raise PermanentError("SlackNotifier needs a bot token or an incoming-webhook URL")
        self._settings = settings
        self._slack = settings.slack
        self._store = store
        self._unsynced = False  # a 'sent' record was written without waiting for the disk since the last sync
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
        self._owner = claims.owner()  # this notifier, as a lease holder
        self._clock = clock

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
        """Deliver everything buffered; see AlertSink.flush for the error contract.

        First alerts go out in batches (``_post_batch``): each batch's leases and 'pending' records are one
        durable commit before its posts, its 'sent' records and the leases' return one relaxed commit after.
        'sent' records are made durable together at the end (one fsync a flush, not one a message), before the
        runner acknowledges the deliveries, whatever the outcome. A story leaves the buffer once every channel
        of it is done, so a retried flush redoes only what is left.
        """
        failures: list[str] = []
        try:
            firsts: list[tuple[Story, str]] = []
            for story_id in list(self._buffer):
                story = self._buffer[story_id].story
                deferred = len(firsts)
                for channel in self.channels(story):
                    self._deliver_one(story, channel, failures, firsts)
                if len(firsts) == deferred:
                    del self._buffer[story_id]
            size = self._batch_size()
            last = {story.id: at // size for at, (story, _) in enumerate(firsts)}  # batch of each story's last channel
            for start in range(0, len(firsts), size):
                batch = firsts[start : start + size]
                failures += self._post_batch(batch)
                for story, _ in batch:
                    if last[story.id] == start // size:
                        self._buffer.pop(story.id, None)
        finally:
            self._sync()
        if failures:
            raise PermanentError(f"{len(failures)} Slack deliveries failed: " + "; ".join(failures[:5]))

    def close(self) -> None:
        """Forget unflushed updates (their bus deliveries were not acked, so they come back)."""
        if self._buffer:
            log.warning("slack: closing with %d unflushed story updates", len(self._buffer))
        self._buffer.clear()

    # -- delivery ---------------------------------------------------------------------------
    def _deliver_one(self, story: Story, channel: str, failures: list[str],
                     firsts: list[tuple[Story, str]] | None = None) -> None:  # fmt: skip
        """``_deliver``, with a failure of this channel alone logged and added to ``failures``."""
        try:
            self._deliver(story, channel, firsts=firsts)
        except _ChannelFailed as exc:
            _failed(story, channel, exc, failures)

    def _deliver(self, story: Story, channel: str, releasing: bool = False,
                 firsts: list[tuple[Story, str]] | None = None) -> None:  # fmt: skip
        """Post, edit or hold one story in one channel, as its outbox record says; a first alert is appended to
        ``firsts`` instead, when given, for the flush to post in a batch."""
        record = self._store.alert(story.id, channel)
        if record is None and self._hold(story, channel):
            return
        if record is None and firsts is not None:
            firsts.append((story, channel))
            return
        if record is not None and (record[0] == "held" or (record[1] or "").startswith("rollup:")):
            return  # in the outbox until its window ends; the release reads the story's current record
        if record is not None and record[0] == "pending" and record[1] == RELEASING and not releasing:
            return  # a release (here or on another host) holds the claim; it posts the story's current record
        if record is None or record[0] != "sent":
            self._post_once(story, channel)
        elif story.carried_by > record[2]:
            self._edit(story, channel, record[1] or "")

    def _post_once(self, story: Story, channel: str) -> None:
        """Post under a lease, so a notifier on another host never posts the same story to the same channel."""
        lease, now = f"alert:{story.id}:{channel}", datetime.now(timezone.utc)
        if not self._store.take_lease(lease, self._owner, now + ALERT_LEASE, now) and not self._take_over(lease, now):
            raise TransientError(f"slack: another notifier is posting story {story.id} to {channel}; will retry")
        try:
            record = self._store.alert(story.id, channel)  # again: the lease's last holder may have posted it
            if record is not None and record[0] == "pending":  # a post that may have reached Slack, then a crash
                ref = self._reconcile(story, channel)
                if ref is not None:
                    log.info("slack: adopted existing message %s for story %s in %s", ref, story.id, channel)
                    self._store.record_alert(story.id, channel, "sent", ref, record[2])
                    record = ("sent", ref, record[2])
            if record is not None and record[0] == "sent":
                if story.carried_by > record[2]:
                    self._edit(story, channel, record[1] or "")
                return
            self._post(story, channel, claimed=record is not None and record[1] == RELEASING)
        finally:
            self._store.drop_lease(lease, self._owner)

    def _take_over(self, lease: str, now: datetime) -> bool:
        """Take ``lease`` from a holder that died on this host (killed mid-post); False if it is not known dead.

        What it may have posted is then found in the channel's history before anything is posted again.
        """
        holder = self._store.lease_holder(lease)
        if holder is None or not claims.dead_here(holder):
            return False
        if not self._store.take_lease(lease, self._owner, now + ALERT_LEASE, now, replacing=holder):
            return False
        log.warning("slack: %s was held by %s, a process of this host that no longer exists; taken over", lease,
                    holder)  # fmt: skip
        return True

    def _post_batch(self, batch: list[tuple[Story, str]]) -> list[str]:
        """Post the first alerts of ``batch`` under one claim; returns the channel failures.

        ``claim_alerts`` takes each alert's lease and records it 'pending' (durable) in one commit; the posts
        follow, and ``settle_alerts`` records what went out 'sent' and gives the leases back in one relaxed
        commit. If the batch stops on an error, the alert being posted stays 'pending' (it may have reached
        Slack: its history decides next time) and those after it are forgotten (never sent). An alert that
        another notifier holds, or that was recorded meanwhile, goes the one-by-one way afterwards.
        """
        now = datetime.now(timezone.utc)
        keys = [f"alert:{story.id}:{channel}" for story, channel in batch]
        claimed = self._store.claim_alerts([(key, story.id, channel, story.carried_by)
                                            for key, (story, channel) in zip(keys, batch, strict=True)],
                                           self._owner, now + ALERT_LEASE, now)  # fmt: skip
        mine = [at for at, (taken, before) in enumerate(claimed) if taken and before is None]
        sent: list[tuple[str, str, str, int]] = []
        failures: list[str] = []
        tried = 0
        try:
            for at in mine:
                story, channel = batch[at]
                tried += 1  # before the call: an attempt that fails may still have reached Slack
                try:
                    sent.append((story.id, channel, self._send(story, channel), story.carried_by))
                except _ChannelFailed as exc:
                    _failed(story, channel, exc, failures)
        finally:
            untried = [(batch[at][0].id, batch[at][1]) for at in mine[tried:]]
            self._store.settle_alerts(sent, untried, [key for key, (taken, _) in zip(keys, claimed, strict=True)
                                                      if taken], self._owner)  # fmt: skip
            self._unsynced = True
        for (story, channel), (taken, before) in zip(batch, claimed, strict=True):
            if not taken or before is not None:
                self._deliver_one(story, channel, failures)
        return failures

    def _batch_size(self) -> int:
        """First alerts claimed at once: POST_BATCH, or what min_interval lets out in BATCH_SECONDS (well within
        the lease; with Slack's own pace of one a second per channel, 5)."""
        interval = self._slack.min_interval
        return max(1, min(POST_BATCH, int(BATCH_SECONDS / interval) if interval > 0 else POST_BATCH))

    def _post(self, story: Story, channel: str, claimed: bool = False) -> None:
        """Post a first alert; ``claimed``: a release's claim already recorded it 'pending' (keep its time)."""
        if not claimed:
            self._store.record_alert(story.id, channel, "pending", None, story.carried_by)
        # durable at the flush's (or release's) sync; 'pending' above was durable before the post
        self._record_sent(story, channel, self._send(story, channel))

    def _send(self, story: Story, channel: str) -> str:
        """Post a first alert to Slack and return its ref (what the outbox records once it is 'sent')."""
        text, blocks = fmt.fallback_text(story), fmt.story_blocks(story, self._settings.timezone)
        if self._hook is not None:
            hook = self._hook
            with self._throttle(channel):
                self._webhook_call(lambda: hook.send(text=text, blocks=blocks, unfurl_links=False, unfurl_media=False))
            return WEBHOOK_CHANNEL
        web = self._client()
        with self._throttle(channel):
            response = self._api(
                "chat.postMessage", channel,
                lambda: web.chat_postMessage(channel=channel, text=text, blocks=blocks, metadata=fmt.metadata(story),
                                             unfurl_links=False, unfurl_media=False, link_names=False),
            )
        channel_id, ts = str(response.get("channel") or channel), str(response["ts"])
        self._channel_ids[channel] = channel_id
        return f"{channel_id}/{ts}"

    def _edit(self, story: Story, channel: str, ref: str) -> None:
        if self._web is None:
            return  # webhooks cannot edit; the first post stands (see module docstring)
        web = self._web
        channel_id, _, ts = ref.rpartition("/")
        channel_id = channel_id or self._resolve(channel)
        text, blocks = fmt.fallback_text(story), fmt.story_blocks(story, self._settings.timezone)
        metadata: dict[str, Any] | None = fmt.metadata(story)
        rolled_up = self._store.rollup_stories(ref)
        if rolled_up is not None:  # the story went out in a roll-up: redraw the roll-up with its new count
            stories = [story if sid == story.id else self._store.story(sid) for sid in rolled_up]
            current = [s for s in stories if s is not None]
            text, blocks, metadata = slack_blocks.rollup_text(current), self._rollup_blocks(current, channel), None
        try:
            with self._throttle(channel):
                self._api("chat.update", channel, lambda: web.chat_update(
                    channel=channel_id, ts=ts, text=text, blocks=blocks, metadata=metadata))
        except _ChannelFailed as exc:
            if not any(code in str(exc) for code in _MESSAGE_GONE):
                raise
            # Someone deleted the message or it can no longer be edited: do not re-post, do not loop.
            log.warning("slack: cannot edit alert %s for story %s in %s: %s", ref, story.id, channel, exc)
        self._record_sent(story, channel, ref)

    def _record_sent(self, story: Story, channel: str, ref: str) -> None:
        """The 'sent' record of a post or edit, written without waiting for the disk: durable at ``_sync``."""
        self._store.record_alert(story.id, channel, "sent", ref, story.carried_by, durable=False)
        self._unsynced = True

    def _sync(self) -> None:
        """Make the 'sent' records written since the last sync durable (nothing to do when there are none: the
        daemon looks for due releases every few seconds, and an idle look must not cost a disk write)."""
        if self._unsynced:
            self._store.sync()
            self._unsynced = False

    def _reconcile(self, story: Story, channel: str) -> str | None:
        """The ref of a message already carrying this story's metadata, or None to post (again)."""
        if self._web is None:
            log.warning("slack: webhook alert for story %s may or may not have been posted "
                        "(webhooks cannot read history); posting again", story.id)
            return None
        return self._find(channel, fmt.EVENT_TYPE, "story_id", story.id)

    def _find(self, channel: str, event_type: str, key: str, value: str) -> str | None:
        """The ref of a recent message in ``channel`` whose metadata has ``key``: ``value``, or None."""
        assert self._web is not None
        web = self._web
        channel_id = self._resolve(channel)
        try:
            response = self._api("conversations.history", channel, lambda: web.conversations_history(
                channel=channel_id, include_all_metadata=True, limit=HISTORY_LIMIT))
        except PermanentError as exc:  # e.g. missing_scope (channels:history): better a rare duplicate than a miss
            log.warning("slack: cannot read history of %s to reconcile %s %s (%s); posting again",
                        channel, key, value, exc)
            return None
        for message in response.get("messages") or []:
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == event_type and payload.get(key) == value:
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

    # -- messages for the Slack digest (notifiers/slack_digest.py) -------------------------------
    @property
    def can_upload(self) -> bool:
        """Files need the Web API (a bot token with files:write); a webhook can only post."""
        return self._web is not None

    def post_message(self, channel: str, text: str, blocks: list[dict[str, Any]], metadata: dict[str, Any]) -> str:
        """Post one message; returns its ref ("<channel id>/<ts>", or "webhook"). Errors as flush()."""
        if self._hook is not None:
            hook = self._hook
            with self._throttle(channel):
                self._webhook_call(lambda: hook.send(text=text, blocks=blocks, unfurl_links=False, unfurl_media=False))
            return WEBHOOK_CHANNEL
        web = self._client()
        with self._throttle(channel):
            response = self._api("chat.postMessage", channel, lambda: web.chat_postMessage(
                channel=channel, text=text, blocks=blocks, metadata=metadata, unfurl_links=False,
                unfurl_media=False, link_names=False))
        channel_id = str(response.get("channel") or channel)
        self._channel_ids[channel] = channel_id
        return f"{channel_id}/{response['ts']}"

    def find_message(self, channel: str, event_type: str, key: str, value: str) -> str | None:
        """A recent message of ours in ``channel`` whose metadata has ``key``: ``value`` (None in webhook mode)."""
        return self._find(channel, event_type, key, value) if self._web is not None else None

    def upload(self, channel: str, data: bytes, filename: str, title: str, alt: str) -> str:
        """Share a file (the digest chart) in ``channel`` via files.getUploadURLExternal, the upload URL and
        files.completeUploadExternal (slack-sdk's files_upload_v2). Returns the file id. Errors as flush();
        a token without files:write is a PermanentError (missing_scope)."""
        web = self._client()
        channel_id = self._resolve(channel)
        try:
            with self._throttle(channel):
                response = self._api("files.upload", channel, lambda: web.files_upload_v2(
                    channel=channel_id, content=data, filename=filename, title=title, alt_txt=alt))
        except SlackRequestError as exc:  # the upload URL refused the bytes
            raise TransientError(f"Slack file upload ({channel}): {redact(str(exc), self._secrets)}") from None
        return str((response.get("file") or {}).get("id") or "file")

    # -- quiet hours ----------------------------------------------------------------------------
    def _hold(self, story: Story, channel: str) -> bool:
        """Hold a first alert that falls in the channel's quiet hours (True), else leave it to be sent."""
        until = quiet_until(self._slack.quiet_hours_for(channel), self._clock())
        if until is None:
            return False
        self._store.hold_alert(story.id, channel, story.carried_by, self._clock())
        log.info("slack: story %s held for %s until %s (quiet hours)", story.id, channel,
                 fmt.local_time(until, self._settings.timezone))
        return True

    def release_due(self) -> int:
        """Send what quiet hours held, for every channel whose window is over; returns stories released.

        Every release is claimed in the store first (``claim_held``, ``begin_rollup``), so notifiers on several
        hosts calling this together send each story once. Claims older than RELEASE_LEASE whose holder died are
        finished first (a pending roll-up or post is looked up in the channel's history before any new post).
        Errors as flush().
        """
        try:
            return self._release_due(self._clock())
        finally:
            self._sync()  # the 'sent' records of released posts and edits (see flush)

    def _release_due(self, now: datetime) -> int:
        released = 0
        for rollup_id, channel, story_ids in self._store.take_over_rollups(now - RELEASE_LEASE, now):
            released += self._send_rollup(rollup_id, channel, story_ids, resumed=True)
        for story_id, channel in self._store.take_over_releases(RELEASING, now - RELEASE_LEASE, now):
            story = self._store.story(story_id)
            if story is not None:
                self._deliver(story, channel, releasing=True)  # looked up in the history before any new post
                released += 1
        by_channel: dict[str, list[str]] = {}
        for story_id, channel, _ in self._store.held_alerts():
            by_channel.setdefault(channel, []).append(story_id)
        for channel, story_ids in by_channel.items():
            quiet = self._slack.quiet_hours_for(channel)
            if quiet_until(quiet, now) is None:
                released += self._release(channel, story_ids, quiet.one_by_one_up_to if quiet else DEFAULT_ONE_BY_ONE,
                                          now)  # fmt: skip
        return released

    def _release(self, channel: str, story_ids: list[str], one_by_one: int, now: datetime) -> int:
        """Claim and send one channel's held alerts: one by one when few, else as ONE roll-up."""
        stories: dict[str, Story] = {}
        for story_id in story_ids:
            story = self._store.story(story_id)
            if story is None:  # pruned, or folded into a story already alerted here
                self._store.drop_alert(story_id, channel)
            else:
                stories[story_id] = story
        if not stories:
            return 0
        if len(stories) <= one_by_one:
            claimed = self._store.claim_held(channel, list(stories), RELEASING, now)
            for story_id in claimed:
                self._post(stories[story_id], channel, claimed=True)
        else:
            rollup_id = uuid.uuid4().hex[:16]
            claimed = self._store.begin_rollup(rollup_id, channel, list(stories), now)
            if claimed:
                self._send_rollup(rollup_id, channel, claimed, resumed=False)
        if claimed:
            log.info("slack: quiet hours over in %s: released %d held stor%s", channel, len(claimed),
                     "y" if len(claimed) == 1 else "ies")
        return len(claimed)

    def _rollup_blocks(self, stories: list[Story], channel: str) -> list[dict[str, Any]]:
        quiet = self._slack.quiet_hours_for(channel)
        window = describe(quiet) if quiet is not None else "-"
        return slack_blocks.rollup_blocks(stories, window, self._settings.timezone)

    def _send_rollup(self, rollup_id: str, channel: str, story_ids: list[str], *, resumed: bool) -> int:
        """Post (or, after a crash, find) the roll-up of ``story_ids`` and record every story as sent."""
        stories = [s for s in (self._store.story(i) for i in story_ids) if s is not None]
        text, blocks = slack_blocks.rollup_text(stories), self._rollup_blocks(stories, channel)
        ref = None
        if resumed and self._web is not None:
            ref = self._find(channel, slack_blocks.ROLLUP_EVENT, "rollup_id", rollup_id)
        if ref is None and self._hook is not None:
            hook = self._hook
            with self._throttle(channel):
                self._webhook_call(lambda: hook.send(text=text, blocks=blocks, unfurl_links=False, unfurl_media=False))
            ref = WEBHOOK_CHANNEL
        elif ref is None:
            web = self._client()
            with self._throttle(channel):
                response = self._api("chat.postMessage", channel, lambda: web.chat_postMessage(
                    channel=channel, text=text, blocks=blocks, metadata=slack_blocks.rollup_metadata(rollup_id),
                    unfurl_links=False, unfurl_media=False, link_names=False))
            channel_id = str(response.get("channel") or channel)
            self._channel_ids[channel] = channel_id
            ref = f"{channel_id}/{response['ts']}"
        carried = {s.id: s.carried_by for s in stories}
        self._store.finish_rollup(rollup_id, ref, {sid: carried.get(sid, 0) for sid in story_ids})
        return len(stories)

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
