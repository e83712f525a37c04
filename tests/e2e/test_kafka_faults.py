"""Fault tests on a real Kafka broker: the roles as separate processes, killed and restarted mid-stream.

In every case each expected Slack alert reaches the stand-in exactly once, the syndicated story ends up
showing all its outlets, and the digest sent afterwards holds every story.
"""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import pytest
import yaml

from tests.e2e.feeds import DISTINCT, PRESS_COPIES, UNRELATED, Item, rss
from tests.e2e.processes import newsradar, output, start, stop, wait_for

pytestmark = pytest.mark.kafka

# Unrelated filler so the stages have a stream to be killed in the middle of.
FILLER = [Item(f"filler-{i}", "대경일보", f"대구 {i}번 시내버스 노선 조정 안내 ({i})",
               f"대구시는 {i}번 시내버스 노선을 {i % 7 + 1}개 정류장 조정한다고 밝혔다.", 300 + i) for i in range(120)]
EXPECTED = len(DISTINCT) + 1  # twelve distinct stories and one press release carried by three outlets


def _config(tmp_path: Path, kafka_broker, http_server, slack_server, smtp_server) -> Path:
    data = {
        "state_dir": str(tmp_path / "state"),
        "web": {"listen": "127.0.0.1:0"},  # any free port: tests may run beside a real daemon
        "bus": {"kind": "kafka", "session_timeout": 3,
                "kafka": {"bootstrap_servers": kafka_broker.bootstrap, "topic_prefix": f"f{uuid.uuid4().hex[:8]}.",
                          "partitions": {"raw-items": 2, "articles": 1, "story-updates": 2, "dead-letter": 1}}},
        "http": {"per_host_delay": 0},
        "sources": [{"name": "regional", "url": http_server.url("/feed.xml"), "interval": 5, "jitter": 0}],
        "slack": {"base_url": slack_server.base_url, "default_channel": "#news", "min_interval": 0.05},
        "smtp": {"host": "127.0.0.1", "port": smtp_server.port, "security": "none"},
        "digest": {"time": "00:00", "misfire_grace": 0, "recipients": ["watcher@example.com"]},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _serve(http_server, items: list[Item]) -> None:
    http_server.add("/feed.xml", rss(items), headers={"Content-Type": "application/rss+xml; charset=utf-8"})


def _state(slack_server) -> str:
    return "; ".join(m.text for m in slack_server.messages("#news"))


def _complete(slack_server) -> bool:
    messages = slack_server.messages("#news")
    press = [m for m in messages if "재활용 클러스터" in m.text]
    shown = press[0].text + str(press[0].blocks) if press else ""
    return len(messages) >= EXPECTED and all(c.outlet in shown for c in PRESS_COPIES)


def _check_exactly_once(slack_server, smtp_server, config: Path) -> None:
    messages = slack_server.messages("#news")
    story_ids = [m.metadata["event_payload"]["story_id"] for m in messages if m.metadata]
    assert len(messages) == EXPECTED, [m.text[:50] for m in messages]
    assert len(set(story_ids)) == EXPECTED and len(slack_server.posts) == EXPECTED  # zero lost, zero doubled
    result = newsradar("--config", str(config), "digest", "--send")
    assert result.returncode == 0, result.stderr
    assert len(smtp_server.messages) == 1
    text = smtp_server.messages[0].message.get_body(preferencelist=("plain",)).get_content()
    for item in DISTINCT:
        assert item.title in text, item.title
    assert "재활용 클러스터" in text


def test_kill_9_processor_and_notifier_mid_stream(tmp_path, kafka_broker, http_server, slack_server, smtp_server):
    config = _config(tmp_path, kafka_broker, http_server, slack_server, smtp_server)
    _serve(http_server, DISTINCT[:6] + PRESS_COPIES[:1] + FILLER[:60])
    slack_server.delay_next(30, 0.25)  # a slow Slack keeps story-updates queued in Kafka
    roles = {role: start(config, "--role", role, name=role) for role in ("collector", "processor", "notifier")}
    try:
        wait_for(lambda: len(slack_server.posts) >= 2, 120, "the first alerts")
        roles["processor"].send_signal(signal.SIGKILL)
        roles["processor"].wait()
        _serve(http_server, DISTINCT + PRESS_COPIES + UNRELATED + FILLER)  # more news while it is down
        roles["processor"] = start(config, "--role", "processor", name="processor2")
        wait_for(lambda: len(slack_server.posts) >= 7, 180, "alerts after the processor restart")
        roles["notifier"].send_signal(signal.SIGKILL)
        roles["notifier"].wait()
        roles["notifier"] = start(config, "--role", "notifier", name="notifier2")
        wait_for(lambda: _complete(slack_server), 240, "every alert, the press release showing 3 outlets",
                 lambda: _state(slack_server))
    finally:
        codes = {role: stop(process) for role, process in roles.items()}
    assert codes == {"collector": 0, "processor": 0, "notifier": 0}, {r: output(p) for r, p in roles.items()}
    _check_exactly_once(slack_server, smtp_server, config)


def test_broker_restart_mid_stream(tmp_path, kafka_broker, http_server, slack_server, smtp_server):
    config = _config(tmp_path, kafka_broker, http_server, slack_server, smtp_server)
    _serve(http_server, DISTINCT[:6] + PRESS_COPIES[:1] + FILLER[:60])
    slack_server.delay_next(20, 0.25)
    process = start(config, "--role", "all", name="all")
    try:
        wait_for(lambda: len(slack_server.posts) >= 2, 120, "the first alerts")
        kafka_broker.restart()
        _serve(http_server, DISTINCT + PRESS_COPIES + UNRELATED + FILLER)
        wait_for(lambda: _complete(slack_server), 240, "every alert after the broker restart",
                 lambda: _state(slack_server))
    finally:
        code = stop(process)
    assert code == 0, output(process)
    _check_exactly_once(slack_server, smtp_server, config)
