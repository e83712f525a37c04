"""SMTP delivery of the digest: a multipart text + HTML message, sent with smtplib.

The Message-ID is derived from (day, recipient), so a digest re-sent after a crash between the
server's "250 accepted" and our store write is recognisably the same message (clients and
filters can drop it). Nothing that reaches a header keeps a CR or LF.
"""

from __future__ import annotations

import hashlib
import logging
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr

from newsradar.errors import PermanentError, TransientError
from newsradar.settings import SmtpSettings, secret
from notifiers.chart import CHART_CID
from notifiers.digest import Digest
from notifiers.slack_format import one_line, strip_bidi

log = logging.getLogger(__name__)


def header_value(text: str) -> str:
    """A value safe for a header: no CR/LF (no header injection), no bidi tricks."""
    return one_line(strip_bidi(text))


def message_id(day: str, recipient: str, sender: str) -> str:
    """Deterministic per (day, recipient): the same digest always carries the same Message-ID."""
    key = hashlib.sha256(f"{day}\x1f{recipient.lower()}".encode()).hexdigest()[:20]
    domain = re.sub(r"[^A-Za-z0-9.-]", "", parseaddr(sender)[1].rpartition("@")[2]) or "newsradar.local"
    return f"<digest.{day}.{key}@{domain}>"


def build_message(digest: Digest, sender: str) -> EmailMessage:
    """The digest as a UTF-8 multipart/alternative message (text first, HTML preferred by clients)."""
    recipient = header_value(digest.recipient)
    if "@" not in parseaddr(recipient)[1]:
        raise PermanentError(f"digest recipient {recipient!r} is not an email address (check digest.recipients)")
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = header_value(sender)
    msg["To"] = recipient
    msg["Subject"] = header_value(digest.subject)
    msg["Date"] = format_datetime(digest.cutoff)
    msg["Message-ID"] = message_id(digest.day, recipient, sender)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Newsradar-Digest"] = digest.day
    # base64 keeps Korean text intact through servers without 8BITMIME
    msg.set_content(digest.text, subtype="plain", charset="utf-8", cte="base64")
    msg.add_alternative(digest.html, subtype="html", charset="utf-8", cte="base64")
    if digest.chart_png:  # the trend chart inline (multipart/related), shown by the HTML's <img src="cid:...">
        html_part = msg.get_payload()[1]  # type: ignore[index]
        assert isinstance(html_part, EmailMessage)
        html_part.add_related(digest.chart_png, maintype="image", subtype="png", cid=f"<{CHART_CID}>",
                              filename="trend.png", disposition="inline")
    return msg


class SmtpTransport:
    """Sends digests through the configured SMTP server (STARTTLS, implicit TLS or plain)."""

    def __init__(self, smtp: SmtpSettings, *, ssl_context: ssl.SSLContext | None = None) -> None:
        if not smtp.host:
            raise PermanentError("SmtpTransport needs smtp.host")
        self._smtp = smtp
        self._host = smtp.host
        self._context = ssl_context

    def deliver(self, digest: Digest, sender: str) -> str:
        """Hand the digest to the server; returns its Message-ID. Errors: see _classify."""
        msg = build_message(digest, sender)
        where = f"SMTP {self._host}:{self._smtp.port}"
        password = secret(self._smtp.password_env) or ""
        try:
            with self._connect() as server:
                self._login(server)
                server.send_message(msg, from_addr=parseaddr(msg["From"])[1], to_addrs=[parseaddr(msg["To"])[1]])
        except (PermanentError, TransientError):
            raise
        except smtplib.SMTPException as exc:
            raise _classify(exc, where, password) from None
        except ssl.SSLError as exc:
            raise PermanentError(f"{where}: TLS failed ({exc.reason or exc}); check smtp.security and the "
                                 "server certificate") from None
        except (TimeoutError, OSError) as exc:
            raise TransientError(f"{where}: cannot reach the server ({type(exc).__name__}: {exc})") from None
        return str(msg["Message-ID"])

    def _connect(self) -> smtplib.SMTP:
        timeout = self._smtp.timeout
        if self._smtp.security == "ssl":
            return smtplib.SMTP_SSL(self._host, self._smtp.port, timeout=timeout, context=self._tls())
        server = smtplib.SMTP(self._host, self._smtp.port, timeout=timeout)
        try:
            server.ehlo()
            if self._smtp.security == "starttls":
                server.starttls(context=self._tls())
                server.ehlo()
        except BaseException:
            server.close()
            raise
        return server

    def _tls(self) -> ssl.SSLContext:
        return self._context or ssl.create_default_context()

    def _login(self, server: smtplib.SMTP) -> None:
        username, password = secret(self._smtp.username_env), secret(self._smtp.password_env)
        if username and not password:
            raise PermanentError(f"${self._smtp.username_env} is set but ${self._smtp.password_env} is empty")
        if username and password:
            server.login(username, password)


def _classify(exc: smtplib.SMTPException, where: str, password: str) -> Exception:
    """4xx and dropped connections are transient; authentication failures and other 5xx are permanent."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return PermanentError(f"{where}: login refused ({exc.smtp_code}); check the SMTP username/password "
                              "environment variables")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return PermanentError(f"{where}: server does not support this ({_text(exc, password)}); check smtp.security")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(f"{r}: {c} {_decode(m, password)}" for r, (c, m) in exc.recipients.items())
        kind = TransientError if codes and all(400 <= c < 500 for c in codes) else PermanentError
        return kind(f"{where}: recipient refused ({detail})")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TransientError(f"{where}: connection dropped ({_text(exc, password)})")
    code = getattr(exc, "smtp_code", None)
    if isinstance(code, int) and 400 <= code < 500:
        return TransientError(f"{where}: temporarily refused ({code} {_text(exc, password)})")
    return PermanentError(f"{where}: refused ({code or ''} {_text(exc, password)})".replace("( ", "("))


def _decode(raw: bytes | str, password: str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return one_line(text.replace(password, "[redacted]") if password else text)[:200]


def _text(exc: smtplib.SMTPException, password: str) -> str:
    error = getattr(exc, "smtp_error", None)
    return _decode(error if error is not None else str(exc), password)
