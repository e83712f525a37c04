"""Roles on separate "hosts": nothing shared but a real Kafka broker and a real PostgreSQL server.

Two collectors (sharded), two processors and two notifiers each run as their own process with their own
working and state directory, all started at the same moment. While news arrives, roles of every kind are
killed with SIGKILL at random moments, 20 times in all, and the broker is restarted once; a supervisor
(this test, as systemd's ``Restart=always`` would) starts whatever has exited. In the end every expected
story reached the Slack stand-in exactly once, the syndicated story's alert was edited to show all its
outlets, and the day's digest, asked for by both notifier hosts at once, went out once and complete.
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
import uuid
import zlib
from pathlib import Path

import pytest
import yaml

from tests.e2e.feeds import DISTINCT, PRESS_COPIES, UNRELATED, Item, rss
from tests.e2e.processes import newsradar, output, start, stop, wait_for

pytestmark = pytest.mark.kafka

FILLER = [Item(f"filler-{i}", "대경일보", f"대구 {i}번 시내버스 노선 조정 안내 ({i})",
               f"대구시는 {i}번 시내버스 노선을 {i % 7 + 1}개 정류장 조정한다고 밝혔다.", 300 + i) for i in range(160)]
EXPECTED = len(DISTINCT) + 1  # twelve distinct stories and one press release carried by three outlets
FEEDS = ("gyeongbuk", "daegyeong", "pohang-news", "yeongil")  # two for each collector shard (crc32 % 2)
ROLES = {"collector-1": ("collector", "1/2"), "collector-2": ("collector", "2/2"),
         "processor-1": ("processor", ""), "processor-2": ("processor", ""),
         "notifier-1": ("notifier", ""), "notifier-2": ("notifier", "")}
KILLS = 20


def _host_config(host: Path, feeds: dict[str, str], kafka_broker, prefix: str, slack_server, smtp_server) -> Path:
    """One host's config: its own state directory; the bus and the state store are the shared servers."""
    data = {
        "state_dir": str(host / "state"),
        "state": {"kind": "postgres", "pool_size": 2},
        "bus": {"kind": "kafka", "session_timeout": 3,
                "kafka": {"bootstrap_servers": kafka_broker.bootstrap, "topic_prefix": prefix,
                          "partitions": {"raw-items": 2, "articles": 1, "story-updates": 2, "dead-letter": 1}}},
        "http": {"per_host_delay": 0},
        "sources": [{"name": name, "url": url, "interval": 5, "jitter": 0} for name, url in feeds.items()],
        "slack": {"base_url": slack_server.base_url, "default_channel": "#news", "min_interval": 0.05},
        "smtp": {"host": "127.0.0.1", "port": smtp_server.port, "security": "none"},
        "digest": {"time": "00:00", "misfire_grace": 0, "recipients": ["watcher@example.com"]},
    }
    host.mkdir(parents=True)
    path = host / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


class Cluster:
    """Six role processes; ``supervise`` restarts any that exited (a kill, or a fenced stand-by)."""

    def __init__(self, configs: dict[str, Path], env: dict[str, str]) -> None:
        self.configs, self.env = configs, env
        self.processes: dict[str, subprocess.Popen] = {}
        self.exits: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def launch(self, name: str) -> None:
        role, shard = ROLES[name]
        args = ["--role", role] + (["--shard", shard] if shard else [])
        self.processes[name] = start(self.configs[name], *args, name=name, env=self.env)

    def kill(self, name: str) -> None:
        with self.lock:
            process = self.processes[name]
            process.send_signal(signal.SIGKILL)
            process.wait()
            self.launch(name)

    def supervise(self) -> None:
        with self.lock:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    self.exits.append((name, process.returncode))
                    self.launch(name)

    def stop_all(self) -> dict[str, int]:
        return {name: stop(process) for name, process in self.processes.items()}


def _split(items: list[Item]) -> dict[str, list[Item]]:
    return {feed: [it for it in items if zlib.crc32(it.guid.encode()) % len(FEEDS) == k] for k, feed in enumerate(FEEDS)}


def test_six_roles_on_separate_hosts_survive_twenty_kills_and_a_broker_restart(
    tmp_path, kafka_broker, postgres_dsn, http_server, slack_server, smtp_server
):
    assert {zlib.crc32(f.encode()) % 2 for f in FEEDS} == {0, 1}  # both collector shards have feeds to poll
    rng = random.Random(20261207)

    def serve(items: list[Item]) -> None:
        for feed, part in _split(items).items():
            http_server.add(f"/{feed}.xml", rss(part), headers={"Content-Type": "application/rss+xml; charset=utf-8"})

    feeds = {feed: http_server.url(f"/{feed}.xml") for feed in FEEDS}
    prefix = f"m{uuid.uuid4().hex[:8]}."
    configs = {name: _host_config(tmp_path / name, feeds, kafka_broker, prefix, slack_server, smtp_server)
               for name in ROLES}
    cluster = Cluster(configs, {"NEWSRADAR_DATABASE_URL": postgres_dsn})
    serve(DISTINCT[:4] + PRESS_COPIES[:1] + FILLER[:50])
    slack_server.delay_next(40, 0.2)  # a slow Slack keeps updates queued while notifiers die
    for name in ROLES:  # all at the same moment: every one must come up
        cluster.launch(name)
    try:
        def first_alerts() -> bool:
            exited = {n: output(p) for n, p in cluster.processes.items() if p.poll() is not None}
            assert not exited, exited  # every role came up, and none died on its own
            return len(slack_server.posts) >= 2

        wait_for(first_alerts, 180, "the first alerts",
                 lambda: "; ".join(f"{n}: {output(p, 300)}" for n, p in cluster.processes.items()))
        stages = [DISTINCT[:8] + PRESS_COPIES[:2] + FILLER[:110], DISTINCT + PRESS_COPIES + UNRELATED + FILLER]
        kinds = ["collector", "processor", "notifier"]
        for k in range(KILLS):
            if k == 7:
                serve(stages[0])
            if k == 10:
                kafka_broker.restart()
            if k == 14:
                serve(stages[1])
            kind = kinds[k % 3]
            victim = rng.choice([n for n in ROLES if ROLES[n][0] == kind])
            time.sleep(rng.uniform(0.3, 2.5))
            cluster.supervise()
            cluster.kill(victim)
        wait_for(lambda: cluster.supervise() or _complete(slack_server), 300,
                 "every alert, the press release showing 3 outlets", lambda: _state(slack_server))
        time.sleep(5)  # anything late or doubled would arrive now
    finally:
        codes = cluster.stop_all()
    assert all(code == 0 for code in codes.values()), {n: output(p) for n, p in cluster.processes.items()}

    messages = slack_server.messages("#news")
    story_ids = [m.metadata["event_payload"]["story_id"] for m in messages if m.metadata]
    assert len(messages) == EXPECTED, [m.text[:50] for m in messages]
    assert len(set(story_ids)) == EXPECTED and len(slack_server.posts) == EXPECTED  # zero lost, zero doubled

    # Both notifier hosts ask for the day's digest at once: it goes out once, with every story.
    env = {"NEWSRADAR_DATABASE_URL": postgres_dsn}
    results: list[subprocess.CompletedProcess] = []
    threads = [threading.Thread(target=lambda c=configs[n]: results.append(
        newsradar("--config", str(c), "digest", "--send", env=env))) for n in ("notifier-1", "notifier-2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.returncode == 0 for r in results), [r.stderr[-2000:] for r in results]
    assert len(smtp_server.messages) == 1, [r.stdout for r in results]
    text = smtp_server.messages[0].message.get_body(preferencelist=("plain",)).get_content()
    for item in DISTINCT:
        assert item.title in text, item.title
    assert "재활용 클러스터" in text


def _state(slack_server) -> str:
    return "; ".join(m.text[:40] for m in slack_server.messages("#news"))


def _complete(slack_server) -> bool:
    messages = slack_server.messages("#news")
    press = [m for m in messages if "재활용 클러스터" in m.text]
    shown = press[0].text + str(press[0].blocks) if press else ""
    return len(messages) >= EXPECTED and all(c.outlet in shown for c in PRESS_COPIES)
