"""The processor stages in a process of their own (``processor.own_process``), as real processes.

The same alerts as one process gives, the child's counts in the daemon's summary, a child killed with -9 started
again with nothing lost or doubled, and a daemon killed with -9 taking its child with it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from newsradar.liveness import alive
from tests.e2e.feeds import DISTINCT, POHAM_ONLY, PRESS_COPIES, UNRELATED, check_alerted_once, rss
from tests.e2e.processes import ROOT, children, newsradar, output, start, stop, wait_for
from tests.servers.slack import TOKEN

ITEMS = DISTINCT + PRESS_COPIES + UNRELATED + [POHAM_ONLY]


def _config(tmp_path: Path, http_server, slack_server) -> Path:
    http_server.add("/feed.xml", rss(ITEMS), headers={"Content-Type": "application/rss+xml; charset=utf-8"})
    data = {
        "state_dir": str(tmp_path / "state"),
        "web": {"enabled": False},
        "http": {"per_host_delay": 0},
        "processor": {"own_process": True},
        "sources": [{"name": "regional", "url": http_server.url("/feed.xml"), "interval": 3600}],
        "slack": {"base_url": slack_server.base_url, "default_channel": "#news", "min_interval": 0},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _processor_processes(pid: int) -> list[int]:
    """Children of ``pid`` that run its processor stages: the first one forked (the daemon's own command line),
    a restarted one spawned (a multiprocessing target, not a resource tracker)."""
    own = _cmdline(pid)
    found = []
    for child in sorted(children(pid)):
        cmdline = _cmdline(child)
        if cmdline and (cmdline == own or (b"spawn_main" in cmdline and b"resource_tracker" not in cmdline)):
            found.append(child)
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_once_in_two_processes_alerts_every_story_once_and_counts_every_stage(tmp_path, http_server, slack_server):
    config = _config(tmp_path, http_server, slack_server)
    run = newsradar("--config", str(config), "run", "--once", env={"SLACK_BOT_TOKEN": TOKEN})
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    check_alerted_once(slack_server)
    # the child's counts came back to the daemon's summary
    stages = json.loads(run.stdout.split("stages: ", 1)[1].splitlines()[0])
    assert stages["processor"]["received"] == stages["processor"]["emitted"] == len(ITEMS)
    assert stages["grouper"]["received"] == len(ITEMS)
    assert stages["notifier"]["received"] == stages["grouper"]["emitted"] > len(DISTINCT)


@pytest.mark.parametrize(("how", "logged"), [(signal.SIGKILL, "ended without a word"),
                                             (signal.SIGTERM, "stopped on its own")], ids=["kill-9", "sigterm"])
def test_a_killed_processor_process_is_started_again_and_nothing_is_lost_or_doubled(
    tmp_path, http_server, slack_server, how, logged
):
    config = _config(tmp_path, http_server, slack_server)
    slack_server.delay_next(6, 0.3)
    daemon = start(config)
    try:
        wait_for(lambda: bool(_processor_processes(daemon.pid)) or daemon.poll() is not None, 60, "the child")
        first = _processor_processes(daemon.pid)[0]
        assert _cmdline(first) == _cmdline(daemon.pid)  # forked before the daemon's threads: modules inherited
        # Once its first line is logged the child handles SIGTERM (before, it is still loading the extraction and
        # grouping modules: the default action ends it, "without a word", and it is restarted as well)
        wait_for(lambda: "[processor]" in output(daemon, tail=100_000), 60, "the child to start",
                 lambda: output(daemon))  # fmt: skip
        time.sleep(random.uniform(0.0, 1.5))  # loading its stages, mid-batch or done: each must come out the same
        os.kill(first, how)
        wait_for(lambda: any(p != first for p in _processor_processes(daemon.pid)) or daemon.poll() is not None,
                 60, "a new child", lambda: output(daemon))  # fmt: skip
        assert daemon.poll() is None, output(daemon)
        wait_for(lambda: len(slack_server.messages("#news")) >= len(DISTINCT) + 1, 120, "every alert",
                 lambda: output(daemon))  # fmt: skip
        second = [p for p in _processor_processes(daemon.pid) if p != first][0]
        assert b"spawn_main" in _cmdline(second)  # a restart is spawned: the daemon runs threads by then
        time.sleep(1.0)  # anything doubled would be posted by now
    finally:
        returncode = stop(daemon)
    assert returncode == 0, output(daemon)
    assert not alive(second)  # the daemon stopped its child
    assert f"processor process {logged}" in output(daemon, tail=100_000)
    check_alerted_once(slack_server)


def test_a_killed_daemon_takes_its_processor_process_with_it(tmp_path, http_server, slack_server):
    config = _config(tmp_path, http_server, slack_server)
    daemon = start(config)
    try:
        # killed while its child starts or works, before any alert is in flight (a notifier killed mid-post
        # is tests/e2e/test_restart.py's: its post's lease then has to run out)
        wait_for(lambda: bool(_processor_processes(daemon.pid)) or daemon.poll() is not None, 60, "the child")
        time.sleep(random.uniform(0.0, 0.8))
        assert daemon.poll() is None, output(daemon)
        (child,) = _processor_processes(daemon.pid)
        daemon.kill()
        daemon.wait(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    wait_for(lambda: not alive(child), 30, "the child to end")

    again = start(config, "--once")
    again.wait(timeout=240)
    assert again.returncode == 0, output(again)
    check_alerted_once(slack_server)


def test_a_run_once_whose_processor_process_dies_fails_loudly(tmp_path, http_server, slack_server):
    config = _config(tmp_path, http_server, slack_server)
    http_server.add("/feed.xml", rss(ITEMS), headers={"Content-Type": "application/rss+xml; charset=utf-8"},
                    delay=3.0)  # a slow sweep: the child is killed before it can drain
    run = start(config, "--once")
    try:
        wait_for(lambda: bool(_processor_processes(run.pid)) or run.poll() is not None, 60, "the child")
        os.kill(_processor_processes(run.pid)[0], signal.SIGKILL)
        run.wait(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0
    assert "processor process: ended unexpectedly (exit code -9)" in output(run)


def test_sigterm_to_the_whole_group_stops_daemon_and_child_cleanly(tmp_path, http_server, slack_server):
    """As systemd stops a unit (every process of it gets SIGTERM at once): both finish their work, exit 0."""
    config = _config(tmp_path, http_server, slack_server)
    log_path = tmp_path / "group.log"
    with log_path.open("wb") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "newsradar.cli", "--config", str(config), "run"], cwd=ROOT,
            env={**os.environ, "SLACK_BOT_TOKEN": TOKEN}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)  # fmt: skip
    try:
        wait_for(lambda: len(slack_server.messages("#news")) >= len(DISTINCT) + 1 or daemon.poll() is not None,
                 120, "every alert", lambda: log_path.read_text(errors="replace")[-2000:])  # fmt: skip
        (child,) = _processor_processes(daemon.pid)
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=90)
    finally:
        if daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
    logged = log_path.read_text(encoding="utf-8", errors="replace")
    assert daemon.returncode == 0, logged[-3000:]
    assert " ERROR " not in logged and "CRITICAL" not in logged, logged[-3000:]
    wait_for(lambda: not alive(child), 30, "the child to end")
    check_alerted_once(slack_server)
