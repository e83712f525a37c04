"""Quiet hours across kill -9: alerts held by one daemon arrive once, as one roll-up, when the window ends,
sent by the daemon started after the kill."""

from __future__ import annotations

import signal
import time
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from newsradar.store import Store
from notifiers.slack_format import safe_inline
from tests.e2e.feeds import DISTINCT, KST, PRESS_COPIES, UNRELATED, rss
from tests.e2e.processes import output, start, stop, wait_for


def _window() -> tuple[str, float]:
    """A quiet window that began ten minutes ago and ends 30-90 s from now; (window, its end on time.monotonic)."""
    now = datetime.now(KST)
    end = (now + timedelta(seconds=60)).replace(second=0, microsecond=0)
    if (end - now).total_seconds() < 30:
        end += timedelta(seconds=60)
    begin = (now - timedelta(minutes=10)).replace(second=0, microsecond=0)
    return f"{begin:%H:%M}-{end:%H:%M}", time.monotonic() + (end - now).total_seconds()


def test_alerts_held_through_a_kill_arrive_once_when_the_window_ends(tmp_path: Path, http_server, slack_server):
    http_server.add("/feed.xml", rss(DISTINCT + PRESS_COPIES + UNRELATED),
                    headers={"Content-Type": "application/rss+xml; charset=utf-8"})
    window, ends_at = _window()
    state = tmp_path / "state"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "state_dir": str(state), "http": {"per_host_delay": 0},
        "sources": [{"name": "regional", "url": http_server.url("/feed.xml"), "interval": 3600}],
        "slack": {"base_url": slack_server.base_url, "default_channel": "#news", "min_interval": 0.05,
                  "quiet_hours": {"window": window, "timezone": "Asia/Seoul", "one_by_one_up_to": 3}},
    }, allow_unicode=True), encoding="utf-8")
    stories = len(DISTINCT) + 1  # the press release's three copies are one story

    def held() -> int:
        store = Store(state / "state.db")
        try:
            return len(store.held_alerts())
        finally:
            store.close()

    first = start(config, name="first")
    try:
        wait_for(lambda: (state / "state.db").exists() and held() == stories or first.poll() is not None, 120,
                 "every alert held", lambda: output(first, 800))
        assert first.poll() is None, output(first)
        assert time.monotonic() < ends_at and slack_server.posts == []  # inside the window: nothing sent
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()

    second = start(config, name="second")
    try:
        wait_for(lambda: len(slack_server.posts) >= 1, max(0.0, ends_at - time.monotonic()) + 60,
                 "the roll-up after the window's end", lambda: output(second, 800))
        time.sleep(12)  # another release tick: nothing more may come
        assert stop(second) == 0, output(second)
    finally:
        if second.poll() is None:
            second.kill()
    assert len(slack_server.posts) == 1, [c.params.get("text") for c in slack_server.posts]
    assert slack_server.posts[0].at >= ends_at - 1.0  # not before the window's end
    blocks = slack_server.messages("#news")[0].blocks
    assert f"보류된 새 기사 {stories}건" in blocks[0]["text"]["text"]
    listed = "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section")
    assert all(safe_inline(item.title) in listed for item in DISTINCT), listed
    press = next(line for line in listed.splitlines() if "재활용 클러스터" in line)
    assert "3개 매체" in press and held() == 0  # the copies that arrived during the window, counted
