"""End-to-end latency and processor throughput through a real Kafka broker (prints figures, asserts nothing).

1. Latency: N distinct relevant items are published to raw-items one at a time (paced), and the time from each
   publish to the Slack stand-in's receipt of its alert is measured: processor and notifier run as separate
   `newsradar run --role …` processes. Prints p50/p90/p99/max.
2. Throughput: a burst of N items is published at once and the time until the processors have published all
   N story updates is measured, with one and then two processor instances (same broker, same run).

    .venv/bin/python bench/bench_kafka.py [--items 1000] [--quick]

Slack's one-message-per-second-per-channel pacing is set to 0 here (it would measure Slack's limit, not ours).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from newsradar.bus.base import RAW, STORIES  # noqa: E402
from newsradar.bus.kafka import KafkaBus  # noqa: E402
from newsradar.events import RawItem  # noqa: E402
from tests.e2e.processes import start, stop  # noqa: E402
from tests.servers.kafka import KafkaBroker, _free_ports, ensure_jars  # noqa: E402
from tests.servers.slack import SlackStandIn, serve_slack  # noqa: E402

WORDS = ["배터리", "양극재", "전구체", "리튬", "니켈", "코발트", "음극재", "전해질", "분리막", "재활용", "수소", "연료전지", "반도체", "철강", "제철소", "항만", "물류", "관광", "축제", "조선", "해양", "바이오", "로봇", "인공지능", "데이터센터", "스마트팜", "신재생", "풍력", "태양광", "원전", "가속기", "대학", "연구소", "병원", "공항", "철도", "고속도로", "산단", "캠퍼스", "공장", "협약", "투자", "착공", "준공", "개소", "유치", "수출", "계약"]


def items(count: int, tag: str) -> list[RawItem]:
    rng = random.Random(tag)
    out = []
    now = datetime.now(timezone.utc)
    for i in range(count):
        words = rng.sample(WORDS, 6)
        title = f"포항 {words[0]} {words[1]} {rng.randint(10, 99999)}건 [{tag}#{i:05d}]"
        body = f"포항시는 {' '.join(words)} 관련 사업 {rng.randint(1, 999)}억 원 규모를 발표했다. 코드 {uuid.uuid4().hex}."
        out.append(RawItem(id=f"{tag}-{i}", source="bench", outlet=f"매체{i % 17}", url=f"https://b/{tag}/{i}",
                           canonical_url=f"https://b/{tag}/{i}", title=title, body=body, published_at=now,
                           fetched_at=now))
    return out


def config(tmp: Path, bootstrap: str, prefix: str, slack: SlackStandIn) -> Path:
    data = {
        "state_dir": str(tmp / prefix),
        "bus": {"kind": "kafka", "session_timeout": 6,
                "kafka": {"bootstrap_servers": bootstrap, "topic_prefix": prefix,
                          "partitions": {"raw-items": 4, "articles": 1, "story-updates": 2, "dead-letter": 1}}},
        "slack": {"base_url": slack.base_url, "default_channel": "#bench", "min_interval": 0},
        "digest": {"time": "00:00", "misfire_grace": 0},
    }
    path = tmp / f"{prefix.strip('.')}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def latency(tmp: Path, bootstrap: str, slack: SlackStandIn, count: int, rate: float) -> None:
    prefix = f"lat{uuid.uuid4().hex[:6]}."
    cfg = config(tmp, bootstrap, prefix, slack)
    bus = KafkaBus(bootstrap, topic_prefix=prefix)
    bus.ensure_topics({"raw-items": 4, "articles": 1, "story-updates": 2, "dead-letter": 1})
    roles = [start(cfg, "--role", "processor", name="p"), start(cfg, "--role", "notifier", name="n")]
    try:
        warm = items(5, "warm" + prefix)
        for item in warm:
            bus.publish(RAW, item.id, item)
        deadline = time.monotonic() + 120
        while len(slack.posts) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        base = len(slack.posts)
        sent: dict[str, float] = {}
        batch = items(count, "lat" + prefix)
        for item in batch:
            sent[item.title.rsplit("[", 1)[1].rstrip("]")] = time.monotonic()
            bus.publish(RAW, item.id, item)
            time.sleep(1 / rate)
        deadline = time.monotonic() + 300
        while len(slack.posts) < base + count and time.monotonic() < deadline:
            time.sleep(0.05)
        received = {}
        for call in slack.posts[base:]:
            text = str(call.params.get("text", ""))
            for tag in sent:
                if f"[{tag}]" in text:  # our tag survives escaping (no special characters)
                    received[tag] = call.at
                    break
        lat = sorted((received[t] - sent[t]) * 1000 for t in received)
        q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else lat * 99
        print(f"latency publish → Slack stand-in over {len(lat)}/{count} items (published at {rate:.0f}/s):")
        print(f"  p50 {q[49]:.0f} ms   p90 {q[89]:.0f} ms   p99 {q[98]:.0f} ms   max {lat[-1]:.0f} ms")
    finally:
        for process in roles:
            stop(process)
        bus.close()


def throughput(tmp: Path, bootstrap: str, slack: SlackStandIn, count: int, processors: int) -> float:
    prefix = f"tp{processors}{uuid.uuid4().hex[:6]}."
    cfg = config(tmp, bootstrap, prefix, slack)
    bus = KafkaBus(bootstrap, topic_prefix=prefix)
    bus.ensure_topics({"raw-items": 4, "articles": 1, "story-updates": 2, "dead-letter": 1})
    reader = bus.consumer(STORIES, "bench-reader")
    procs = [start(cfg, "--role", "processor", name=f"p{i}") for i in range(processors)]
    try:
        for item in items(20, "warm" + prefix):  # wait until every instance has joined and is working
            bus.publish(RAW, item.id, item)
        seen = 0
        deadline = time.monotonic() + 120
        while seen < 20 and time.monotonic() < deadline:
            seen += len(reader.poll(500, 0.5))
        time.sleep(8)  # let the group settle (a join during the burst would pause everyone)
        burst = items(count, "tp" + prefix)
        started = time.monotonic()
        bus.publish_many(RAW, [(item.id, item) for item in burst])
        got = 0
        deadline = time.monotonic() + 600
        while got < count and time.monotonic() < deadline:
            got += len(reader.poll(1000, 0.5))
        elapsed = time.monotonic() - started
        rate = got / elapsed
        print(f"throughput with {processors} processor instance(s): {got} items in {elapsed:.1f} s = {rate:.0f} items/s")
        return rate
    finally:
        for process in procs:
            stop(process)
        reader.close()
        bus.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="items per second published in the latency run")
    parser.add_argument("--quick", action="store_true", help="200 items")
    args = parser.parse_args()
    count = 200 if args.quick else args.items
    ensure_jars()
    with tempfile.TemporaryDirectory() as tmpdir, serve_slack() as slack:
        tmp = Path(tmpdir)
        broker = KafkaBroker(tmp / "kafka", *_free_ports(2))
        broker.start()
        try:
            print(f"Kafka broker at {broker.bootstrap}; {count} items\n")
            latency(tmp, broker.bootstrap, slack, count, args.rate)
            one = throughput(tmp, broker.bootstrap, slack, count, 1)
            two = throughput(tmp, broker.bootstrap, slack, count, 2)
            print(f"\nratio two/one processor instances: {two / one:.2f}x (2 cores shared by broker, bench and roles)")
        finally:
            broker.stop(keep=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
