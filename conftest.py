"""Root conftest: the real local servers every test may use (HTTP, Slack stand-in, SMTP, Kafka, PostgreSQL).

Under ``NEWSRADAR_NO_SKIPS=1`` (set by .ci/run) a skipped test fails instead: in CI everything a test needs is
there (../shared, the servers, the browser), so a skip there would be a test that silently does not exist.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

pytest_plugins = [
    "tests.servers.http",
    "tests.servers.slack",
    "tests.servers.smtp",
    "tests.servers.kafka",
    "tests.servers.postgres",
    "tests.reliability.log_guard",  # fails any test whose logs or outputs contain a test secret
]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and os.environ.get("NEWSRADAR_NO_SKIPS") == "1" and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, and NEWSRADAR_NO_SKIPS=1 (CI) forbids skips: {report.longrepr}"
