"""The secrets guard: every log record of the run, formatted with its traceback, is scanned for the test secrets.

Used two ways: the reliability conftest imports the ``secrets_guard`` fixture, and the root conftest can list this
module in ``pytest_plugins`` so that every test of the suite is covered (see the reliability report). The
fixture is session-scoped and autouse; a per-test fixture fails the test that leaked, with the offending line,
and the session fixture fails the run at its end. Subprocess logs and command output are fed in with ``scan``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.servers.slack import TOKEN, WEBHOOK_PATH
from tests.servers.smtp import PASSWORD

# Secrets only the reliability tests use (wrong credentials must not leak either).
WRONG_TOKEN = "xoxb-reliability-wrong-7f3a9c2e"
WRONG_PASSWORD = "wrong-pass-reliability-41d2b8"
WEBHOOK_SECRET = WEBHOOK_PATH.rsplit("/", 1)[1]
SECRETS = (TOKEN, WEBHOOK_PATH, WEBHOOK_SECRET, PASSWORD, WRONG_TOKEN, WRONG_PASSWORD)

_FORMAT = logging.Formatter("%(levelname)s %(name)s: %(message)s")


@dataclass
class Leak:
    where: str
    secret: str
    line: str


class SecretsGuard(logging.Handler):
    """A root-logger handler that keeps a count of records scanned and every line holding a secret."""

    def __init__(self, secrets: tuple[str, ...] = SECRETS) -> None:
        super().__init__(logging.DEBUG)
        self.secrets = secrets
        self.scanned = 0
        self.leaks: list[Leak] = []
        self._guard_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = _FORMAT.format(record)
        except Exception as exc:  # noqa: BLE001 - a record that cannot be formatted is itself worth seeing
            text = f"{record.name}: unformattable record {record.msg!r} {record.args!r} ({exc})"
        self.scan(f"log {record.name}", text)

    def scan(self, where: str, text: str) -> None:
        """Check one text (a log record, a subprocess log file, a command's output) for every secret."""
        with self._guard_lock:
            self.scanned += 1
            for secret in self.secrets:
                if secret in text:
                    line = next((ln for ln in text.splitlines() if secret in ln), text)[:300]
                    self.leaks.append(Leak(where, secret, line))


_ACTIVE: SecretsGuard | None = None


def active() -> SecretsGuard | None:
    """The guard of this session, if installed (the scorecard reports it)."""
    return _ACTIVE


@pytest.fixture(scope="session", autouse=True)
def secrets_guard() -> Iterator[SecretsGuard]:
    """Attach the guard to the root logger at DEBUG for the whole session; fail at the end if anything leaked."""
    global _ACTIVE
    if _ACTIVE is not None:  # installed already (root conftest plugin and reliability conftest both ask)
        yield _ACTIVE
        return
    guard = _ACTIVE = SecretsGuard()
    root = logging.getLogger()
    level = root.level
    root.addHandler(guard)
    root.setLevel(logging.DEBUG)  # secrets leak at DEBUG first (request URLs, headers): look there too
    try:
        yield guard
    finally:
        root.removeHandler(guard)
        root.setLevel(level)
        leaks = "\n".join(f"  {k.where}: {k.line}" for k in guard.leaks[:20])
        assert not guard.leaks, f"{len(guard.leaks)} log line(s) of this run hold a test secret:\n{leaks}"


@pytest.fixture(autouse=True)
def no_secret_in_this_test(secrets_guard: SecretsGuard) -> Iterator[None]:
    """Fail the very test whose logs held a secret, naming the line."""
    before = len(secrets_guard.leaks)
    yield
    new = secrets_guard.leaks[before:]
    assert not new, "a secret reached the logs:\n" + "\n".join(f"  {k.where}: {k.line}" for k in new[:10])
