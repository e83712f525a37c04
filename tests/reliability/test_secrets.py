"""Secrets never appear in logs, errors or command output: ``newsradar`` run as a real process at DEBUG with
every secret set, against services that reject them, and its state files afterwards.

The in-process tests of this suite are covered by the secrets guard (log_guard.py), which scans every log record
of the run; here the output of real ``newsradar`` processes and the files they leave are fed to it too.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.reliability.log_guard import SECRETS, WRONG_PASSWORD, WRONG_TOKEN, SecretsGuard
from tests.reliability.news import HEALTHY, RELEVANT, XML, rss
from tests.reliability.scorecard import Card
from tests.servers.http import HttpServer
from tests.servers.slack import TOKEN, SlackStandIn
from tests.servers.smtp import PASSWORD, USERNAME, SmtpServer

ROOT = Path(__file__).resolve().parents[2]


def newsradar(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("SLACK_BOT_TOKEN", "SLACK_WEBHOOK_URL", "SMTP_USERNAME", "SMTP_PASSWORD")}
    return subprocess.run([sys.executable, "-m", "newsradar.cli", *args], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=180)


def _config(folder: Path, http_server: HttpServer, slack: SlackStandIn, smtp: SmtpServer) -> Path:
    """A config with its own state folder under ``folder``."""
    http_server.add("/news.xml", rss([HEALTHY, RELEVANT[0]]).encode(), headers=XML)
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "state_dir": str(folder / "state"),
        "web": {"listen": "127.0.0.1:0"},  # any free port: tests may run beside a real daemon
        "http": {"per_host_delay": 0, "total_timeout": 5},
        "sources": [{"name": "regional", "url": http_server.url("/news.xml")}],
        "slack": {"base_url": slack.base_url, "default_channel": "#news", "min_interval": 0, "timeout": 2},
        "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none", "timeout": 5},
        "digest": {"time": "00:00", "recipients": ["watcher@example.com"]},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _debug(config: str) -> tuple[str, ...]:
    return ("--log-level", "DEBUG", "--config", config)


def _files(state: Path) -> dict[str, str]:
    """Every file the runs left (state DB, bus with its dead letters, health.json, alerts), as text."""
    return {str(p.relative_to(state)): p.read_bytes().decode("utf-8", "replace")
            for p in sorted(state.rglob("*")) if p.is_file()}


def test_no_secret_in_process_logs_errors_command_output_or_state_files(
    tmp_path: Path, http_server: HttpServer, slack_server: SlackStandIn, smtp_server: SmtpServer,
    secrets_guard: SecretsGuard, scorecard: Card,
) -> None:
    smtp_server.require_auth()
    bot = str(_config(tmp_path / "bot", http_server, slack_server, smtp_server))
    hook = str(_config(tmp_path / "webhook", http_server, slack_server, smtp_server))
    hook_ok = str(_config(tmp_path / "webhook-ok", http_server, slack_server, smtp_server))
    wrong = {"SLACK_BOT_TOKEN": WRONG_TOKEN, "SMTP_USERNAME": USERNAME, "SMTP_PASSWORD": WRONG_PASSWORD}
    right = {"SLACK_BOT_TOKEN": TOKEN, "SMTP_USERNAME": USERNAME, "SMTP_PASSWORD": PASSWORD}
    runs = {
        "run --once, rejected token": newsradar(*_debug(bot), "run", "--once", env=wrong),
        "digest --send, rejected password": newsradar(*_debug(bot), "digest", "--send", env=wrong),
        "digest --send, valid password": newsradar(*_debug(bot), "digest", "--send", env=right),
        "check-config, every secret set": newsradar(
            "check-config", bot, env={**right, "SLACK_WEBHOOK_URL": slack_server.webhook_url}),
    }
    webhook = {"SLACK_WEBHOOK_URL": slack_server.webhook_url}
    slack_server.fail_next(1, "invalid_auth")  # the webhook is refused as revoked
    runs["run --once, webhook revoked"] = newsradar(*_debug(hook), "run", "--once", env=webhook)
    slack_server.fail_next(1, "500")  # then a webhook that fails once and works
    runs["run --once, webhook 500 then ok"] = newsradar(*_debug(hook_ok), "run", "--once", env=webhook)
    outputs = {name: r.stdout + r.stderr for name, r in runs.items()}
    for folder in ("bot", "webhook", "webhook-ok"):
        outputs.update({f"file {folder}/{k}": v for k, v in _files(tmp_path / folder / "state").items()})
    before = len(secrets_guard.leaks)
    for name, text in outputs.items():
        secrets_guard.scan(name, text)
    leaks = secrets_guard.leaks[before:]
    exercised = {
        "token rejected": "invalid_auth" in outputs["run --once, rejected token"],
        "password rejected": "login refused" in outputs["digest --send, rejected password"],
        "webhook revoked": "$SLACK_WEBHOOK_URL" in outputs["run --once, webhook revoked"],
        "webhook used": any(c.method == "webhook" and c.outcome == "ok" for c in slack_server.calls),
        "digest sent": len(smtp_server.messages) == 1,
    }
    scorecard.record(
        "secrets: newsradar processes at DEBUG, rejected credentials, state files",
        "no token, webhook URL or password in any output, error, dead letter or state file",
        f"{len(outputs)} outputs and files scanned for {len(SECRETS)} secrets: {len(leaks)} leak(s); "
        f"paths exercised: {exercised}", lost=0, doubled=0,
    )
    assert all(exercised.values()), (exercised, {k: v[-1500:] for k, v in outputs.items()})
    assert not leaks, "\n".join(f"{k.where}: {k.line}" for k in leaks)
    assert runs["check-config, every secret set"].returncode == 0


@pytest.mark.parametrize("mode", ["bot", "webhook"])
def test_no_secret_in_in_process_debug_logs(
    mode: str, tmp_path: Path, http_server: HttpServer, slack_server: SlackStandIn,
    monkeypatch: pytest.MonkeyPatch, secrets_guard: SecretsGuard, caplog: pytest.LogCaptureFixture,
    scorecard: Card,
) -> None:
    """The daemon in this process at DEBUG, Slack refusing then recovering: the guard sees every record."""
    from tests.reliability.harness import pipeline_settings, run_once

    for name in ("SLACK_BOT_TOKEN", "SLACK_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(*(("SLACK_BOT_TOKEN", TOKEN) if mode == "bot" else ("SLACK_WEBHOOK_URL", slack_server.webhook_url)))
    http_server.add("/news.xml", rss([HEALTHY]).encode(), headers=XML)
    settings = pipeline_settings(tmp_path, slack_server, [{"name": "regional", "url": http_server.url("/news.xml")}])
    slack_server.fail_next(1, "500")
    before_records, before_leaks = secrets_guard.scanned, len(secrets_guard.leaks)
    run_once(settings)
    scanned = secrets_guard.scanned - before_records
    leaks = secrets_guard.leaks[before_leaks:]
    scorecard.record(
        f"secrets: in-process daemon at DEBUG ({mode} mode)", "no secret in any log record (slack-sdk DEBUG too)",
        f"{scanned} records scanned, {len(leaks)} leak(s), {len(slack_server.posts)} post(s)", lost=0, doubled=0,
    )
    sdk_debug = [r for r in caplog.records if r.name == "notifiers.slack.sdk" and r.levelno == logging.DEBUG]
    assert scanned > 10 and sdk_debug and len(slack_server.posts) == 1  # the sdk's DEBUG lines (URLs) were seen
    assert not leaks, "\n".join(f"{k.where}: {k.line}" for k in leaks)


def test_the_guard_sees_a_secret_in_a_message_and_in_a_traceback() -> None:
    """The check itself can fail: a secret in a message or only in an exception's traceback is caught."""
    guard = SecretsGuard()
    log = logging.getLogger("tests.reliability.guard-self-test")
    log.propagate = False  # keep these deliberate leaks away from the session's guard
    log.addHandler(guard)
    try:
        log.warning("posting with %s", TOKEN)
        try:
            raise RuntimeError(f"login failed for {PASSWORD}")
        except RuntimeError:
            log.exception("digest failed")
        log.info("nothing to see")
    finally:
        log.removeHandler(guard)
    assert [leak.secret for leak in guard.leaks] == [TOKEN, PASSWORD] and guard.scanned == 3
