"""kill -9 (and SIGTERM) the daemon mid-run, start it again: nothing lost, nothing sent twice."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import yaml

from tests.e2e.feeds import DISTINCT, PRESS_COPIES, UNRELATED, check_alerted_once, rss
from tests.e2e.processes import children, output, start, wait_for


def _config(tmp_path: Path, http_server, slack_server) -> Path:
    data = {
        "state_dir": str(tmp_path / "state"),
        "web": {"listen": "127.0.0.1:0"},  # any free port: tests may run beside a real daemon
        "http": {"per_host_delay": 0},
        "sources": [{"name": "regional", "url": http_server.url("/feed.xml"), "interval": 3600}],
        "slack": {"base_url": slack_server.base_url, "default_channel": "#news", "min_interval": 0.05},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_restart_mid_run_loses_nothing_and_doubles_nothing(tmp_path, http_server, slack_server, how):
    http_server.add("/feed.xml", rss(DISTINCT + PRESS_COPIES + UNRELATED),
                    headers={"Content-Type": "application/rss+xml; charset=utf-8"})
    slack_server.delay_next(8, 0.4)  # slow answers: the kill is likely to land between a post and its record
    config = _config(tmp_path, http_server, slack_server)

    daemon = start(config)
    try:
        wait_for(lambda: len(slack_server.posts) >= 4 or daemon.poll() is not None, 120, "the first alerts")
        assert daemon.poll() is None, output(daemon)
        daemon.send_signal(how)
        daemon.wait(timeout=90)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    if how == signal.SIGTERM:
        assert daemon.returncode == 0, output(daemon)
    posted_before = len(slack_server.posts)

    again = start(config, "--once")
    again.wait(timeout=240)
    assert again.returncode == 0, output(again)

    check_alerted_once(slack_server, note=f"{posted_before} posted before the restart")


def test_run_once_killed_mid_run_then_run_again_loses_nothing_and_doubles_nothing(tmp_path, http_server,
                                                                                 slack_server):  # fmt: skip
    """kill -9 ``run --once`` while its stages run beside the sweep (two sweep processes), then run it again."""
    for i, entries in enumerate((DISTINCT, PRESS_COPIES + UNRELATED)):
        http_server.add(f"/feed{i}.xml", rss(entries), headers={"Content-Type": "application/rss+xml; charset=utf-8"})
    config = _config(tmp_path, http_server, slack_server)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["sources"] = [{"name": f"regional-{i}", "url": http_server.url(f"/feed{i}.xml"), "interval": 3600}
                       for i in range(2)]  # fmt: skip
    data["polling"] = {"processes": 2}
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    slack_server.delay_next(8, 0.4)  # slow answers: the kill is likely to land between a post and its record

    once = start(config, "--once")
    try:
        wait_for(lambda: len(slack_server.posts) >= 2 or once.poll() is not None, 120, "the first alerts")
        assert once.poll() is None, output(once)
        workers = children(once.pid)
        assert workers, "the sweep ran in worker processes"
        once.send_signal(signal.SIGKILL)
        once.wait(timeout=90)
    finally:
        if once.poll() is None:
            once.kill()
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), 30, "the orphaned sweep workers to end")

    again = start(config, "--once")
    again.wait(timeout=240)
    assert again.returncode == 0, output(again)

    check_alerted_once(slack_server)


