"""Who may read the dashboard: anyone on loopback; elsewhere only holders of the bearer token.

Bound to a loopback address (127.0.0.0/8, ::1, localhost) the dashboard needs no login. Bound anywhere
else it refuses to start without a token in the environment variable ``web.token_env`` (16 characters
or more), and every page and /metrics then need either ``Authorization: Bearer <token>`` (Prometheus,
curl) or the session cookie a browser gets from the login form. The cookie holds an HMAC of the token,
never the token; it is HttpOnly and SameSite=Strict. /healthz and /readyz stay open for probes: their
short bodies name no source and no secret.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from newsradar.errors import ConfigError
from newsradar.settings import WebSettings, secret

COOKIE = "newsradar_session"
MIN_TOKEN_CHARS = 16
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/login", "/static/dashboard.css", "/favicon.ico"})


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses; a host name other than localhost is not trusted as one."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Gate:
    """Checks requests against the token, if one is required; built once from settings at start-up."""

    def __init__(self, web: WebSettings) -> None:
        self.required = not is_loopback(web.host)
        self._token = secret(web.token_env) if self.required else None
        if self.required and (self._token is None or len(self._token) < MIN_TOKEN_CHARS):
            raise ConfigError(
                f"web.listen {web.listen} is not a loopback address: set ${web.token_env} to a token of "
                f"{MIN_TOKEN_CHARS} characters or more (the dashboard and /metrics then require it), "
                "or listen on 127.0.0.1"
            )
        key = (self._token or "").encode("utf-8")
        self._session = hmac.new(key, b"newsradar dashboard session", hashlib.sha256).hexdigest() if key else ""

    def allows(self, path: str, authorization: str | None, cookie: str | None) -> bool:
        """May this request see ``path``?"""
        if not self.required or path in OPEN_PATHS:
            return True
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and self.token_matches(presented.strip()):
            return True
        if not cookie:
            return False
        return hmac.compare_digest(cookie.encode("utf-8"), self._session.encode("utf-8"))

    def token_matches(self, presented: str) -> bool:
        return bool(self._token) and hmac.compare_digest(presented.encode("utf-8"), (self._token or "").encode())

    @property
    def session(self) -> str:
        """The cookie value a correct login sets."""
        return self._session
