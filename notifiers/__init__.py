"""Notifiers: Slack alerts per story, the daily email digest, and a console/file fallback for both.

The daemon builds them once from config with ``alert_sink`` and ``digest_mailer``; secrets are read
from the environment at that moment and never logged.
"""

from __future__ import annotations

import logging
import ssl
from typing import Protocol

from newsradar.events import Story, StoryUpdate
from newsradar.settings import Settings, secret
from newsradar.store import StateStore
from notifiers.console import ConsoleAlerts, DigestFiles
from notifiers.digest import Digest, DigestMailer, DigestTransport
from notifiers.email import SmtpTransport
from notifiers.slack import SlackNotifier

log = logging.getLogger(__name__)


class AlertSink(Protocol):
    """Where story alerts go: Slack, or the console fallback."""

    def add(self, update: StoryUpdate) -> None:
        """Called for each StoryUpdate consumed; buffers it (several updates of a story coalesce)."""
        ...

    def flush(self) -> None:
        """Deliver everything buffered; on return every buffered update's effect is recorded in the store.

        Raises TransientError(retry_after) (429, 5xx, timeouts, ratelimited) or PermanentError
        (invalid_auth, channel_not_found, ...). Whatever was delivered before the error stays
        recorded, so calling flush() again after a TransientError sends nothing twice.
        """
        ...

    def close(self) -> None:
        """Called at shutdown after the last flush; drops anything unflushed (it was not acked)."""
        ...

    def channels(self, story: Story) -> list[str]:
        """The channels (idempotency keys in the store's alerts table) this story is delivered to."""
        ...


def alert_sink(settings: Settings, store: StateStore) -> AlertSink:
    """SlackNotifier when a bot token or webhook URL is set (the token wins), else ConsoleAlerts."""
    token, webhook = secret(settings.slack.token_env), secret(settings.slack.webhook_url_env)
    if token or webhook:
        sink = SlackNotifier(settings, store, token=token, webhook_url=None if token else webhook)
        log.info("alerts: Slack (%s mode)", sink.mode)
        return sink
    log.info("alerts: no $%s or $%s set; printing alerts and writing them under %s/alerts",
             settings.slack.token_env, settings.slack.webhook_url_env, settings.state_dir)
    return ConsoleAlerts(settings, store)


def digest_mailer(settings: Settings, store: StateStore, *, ssl_context: ssl.SSLContext | None = None) -> DigestMailer:
    """Sends via SMTP when smtp.host is set, else writes under {state_dir}/digests/ and prints.

    ``ssl_context`` overrides the default (system CAs) for STARTTLS/SSL, e.g. a private CA.
    """
    transport: DigestTransport
    if settings.smtp.host:
        transport = SmtpTransport(settings.smtp, ssl_context=ssl_context)
    else:
        log.info("digest: no smtp.host; writing digests under %s/digests", settings.state_dir)
        transport = DigestFiles(settings.state_path)
    return DigestMailer(settings, store, transport)


__all__ = [
    "AlertSink",
    "ConsoleAlerts",
    "Digest",
    "DigestFiles",
    "DigestMailer",
    "SlackNotifier",
    "SmtpTransport",
    "alert_sink",
    "digest_mailer",
]
