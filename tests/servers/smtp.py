"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, port 0, storing every accepted message.

``smtp_server`` is plain SMTP; call ``.require_auth()`` to demand AUTH PLAIN/LOGIN with
USERNAME/PASSWORD, ``.refuse_next(n, code)`` to answer 421/451 to the next n DATA commands.
``smtp_tls_server`` offers STARTTLS and ``smtp_ssl_server`` implicit TLS, both with a certificate
from a throwaway CA made at run time (trustme); ``.client_context`` trusts that CA.
"""

from __future__ import annotations

import email
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

USERNAME = "digest-bot"
PASSWORD = "s3cret-test-password"


@dataclass
class Received:
    """One accepted message: envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    authenticated_as: str | None
    tls: bool


class _Handler:
    def __init__(self, box: SmtpServer) -> None:
        self.box = box

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        box = self.box
        with box.lock:
            box.transactions += 1
            if box.refusals:
                return box.refusals.pop(0)
            raw = envelope.original_content or envelope.content or b""
            raw = raw if isinstance(raw, bytes) else raw.encode("utf-8")
            message = email.message_from_bytes(raw, policy=default_policy)
            login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
            box.messages.append(Received(envelope.mail_from or "", list(envelope.rcpt_tos), message,  # type: ignore[arg-type]
                                         raw, login, box.implicit_tls or session.ssl is not None))
        return "250 2.0.0 Message accepted for delivery"


class _Controller(Controller):
    """Controller bound to an already-open port-0 socket (aiosmtpd's own needs a fixed port)."""

    def __init__(self, handler: Any, sock: socket.socket, **kwargs: Any) -> None:
        self._sock = sock
        super().__init__(handler, hostname="127.0.0.1", port=sock.getsockname()[1], **kwargs)

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


class SmtpServer:
    """A running aiosmtpd with knobs for auth and refusals; ``messages`` holds what it accepted."""

    def __init__(self, *, tls: ssl.SSLContext | None = None, implicit_tls: bool = False,
                 client_context: ssl.SSLContext | None = None) -> None:
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self.refusals: list[str] = []
        self.transactions = 0
        self.auth_attempts: list[tuple[str, bool]] = []
        self._auth_required = False
        self.client_context = client_context
        self._tls = tls
        self.implicit_tls = implicit_tls
        self._controller: _Controller | None = None
        self.host = "127.0.0.1"
        self.port = 0

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        kwargs: dict[str, Any] = {
            "authenticator": self._authenticate,
            # implicit TLS: the whole connection is encrypted, but aiosmtpd only counts STARTTLS as TLS
            "auth_require_tls": self._tls is not None and not self.implicit_tls,
            "auth_required": False,
        }
        if self.implicit_tls:
            kwargs["ssl_context"] = self._tls
        elif self._tls is not None:
            kwargs["tls_context"] = self._tls
            kwargs["require_starttls"] = True
        self._controller = _Controller(_Handler(self), sock, **kwargs)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def require_auth(self) -> None:
        """From now on, MAIL FROM needs a successful AUTH as USERNAME/PASSWORD."""
        self._auth_required = True
        assert self._controller is not None and self._controller.smtpd is not None
        self._controller.SMTP_kwargs["auth_required"] = True

    def refuse_next(self, count: int, code: int = 451) -> None:
        """Answer the next ``count`` DATA commands with a temporary (4xx) or permanent (5xx) refusal."""
        text = {421: "421 4.3.2 Service shutting down", 451: "451 4.3.0 Try again later",
                554: "554 5.7.1 Rejected"}.get(code, f"{code} Refused")
        with self.lock:
            self.refusals += [text] * count

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == USERNAME
              and auth_data.password.decode() == PASSWORD)
        with self.lock:
            login = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else "?"
            self.auth_attempts.append((login, ok))
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def _tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    trustme = pytest.importorskip("trustme", reason="trustme (test extra) makes the throwaway TLS certificates")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


def _running(server: SmtpServer) -> Iterator[SmtpServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """Plain SMTP (AUTH allowed without TLS, only on 127.0.0.1), no auth required until require_auth()."""
    yield from _running(SmtpServer())


@pytest.fixture
def smtp_tls_server() -> Iterator[SmtpServer]:
    """SMTP that requires STARTTLS before anything else; AUTH only after TLS."""
    server_ctx, client_ctx = _tls_contexts()
    yield from _running(SmtpServer(tls=server_ctx, client_context=client_ctx))


@pytest.fixture
def smtp_ssl_server() -> Iterator[SmtpServer]:
    """SMTP over implicit TLS (port 465 style)."""
    server_ctx, client_ctx = _tls_contexts()
    yield from _running(SmtpServer(tls=server_ctx, implicit_tls=True, client_context=client_ctx))
