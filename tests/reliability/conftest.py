"""Reliability suite fixtures: Slack credentials in the environment, the scorecard, and the secrets guard.

The scorecard rows are written to $NEWSRADAR_SCORECARD at the end of the session (bench/reliability.py
sets it and prints the table). The secrets guard scans every log line of the session (see log_guard.py).
"""

from __future__ import annotations

import pytest

from tests.reliability import log_guard
from tests.reliability.log_guard import no_secret_in_this_test, secrets_guard  # noqa: F401 - fixtures
from tests.reliability.scorecard import REGISTRY, Card, Row, destination
from tests.servers.slack import TOKEN


@pytest.fixture
def slack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bot-token mode against the stand-in; no webhook, no SMTP credentials."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    for name in ("SLACK_WEBHOOK_URL", "SMTP_USERNAME", "SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def scorecard(request: pytest.FixtureRequest) -> Card:
    return Card(request.node.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed:
        REGISTRY.outcome(report.nodeid, "failed")
    elif report.when == "call":
        REGISTRY.outcome(report.nodeid, "skipped" if report.skipped else "passed")
    elif report.skipped:
        REGISTRY.outcome(report.nodeid, "skipped")


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = destination()
    if path is None:
        return
    guard = log_guard.active()
    if guard is not None:
        leaks = len(guard.leaks)
        REGISTRY.add(Row(
            "secrets in every log line of the run",
            "no token, webhook URL or SMTP password in any log line, error or command output",
            f"{guard.scanned} log records and outputs scanned, {leaks} held a secret",
            lost=0, doubled=0, test="(session)",
        ))
        REGISTRY.outcome("(session)", "failed" if leaks else "passed")
    REGISTRY.write(path)
