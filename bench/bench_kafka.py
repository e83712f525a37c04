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
import json
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
from tests.e2e.processes import output, start, stop  # noqa: E402
from tests.servers.kafka import KafkaBroker, _free_ports, ensure_jars  # noqa: E402
from tests.servers.slack import SlackStandIn, serve_slack  # noqa: E402

_SYLLABLES = [chr(c) for c in range(0xAC00, 0xD7A4, 5)]  # 2,234 Hangul syllables


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(3))


def items(count: int, tag: str) -> list[RawItem]:
    """``count`` relevant items that are all different stories (random words besides the watch term 포항).

    Each must start its own story, so each is one Slack post: items built from one template would
    rightly be grouped into a few stories, and then most of them would be edits, not posts.
    """
    rng = random.Random(tag)
    out = []
    now = datetime.now(timezone.utc)
    for i in range(count):
        title = f"포항 {' '.join(_word(rng) for _ in range(5))}"
        body = f"포항 {' '.join(_word(rng) for _ in range(14))}."
        out.append(
            RawItem(
                id=f"{tag}-{i}",
                source="bench",
                outlet=f"매체{i % 17}",
                url=f"https://b/{tag}/{i}",
                canonical_url=f"https://b/{tag}/{i}",
                title=title,
                body=body,
                published_at=now,
                fetched_at=now,
            )
        )
    return out


def config(tmp: Path, bootstrap: str, prefix: str, slack: SlackStandIn) -> Path:
    data = {
        "state_dir": str(tmp / prefix),
        "bus": {
            "kind": "kafka",
            "session_timeout": 6,
            "kafka": {
                "bootstrap_servers": bootstrap,
                "topic_prefix": prefix,
                "partitions": {"raw-items": 4, "articles": 1, "story-updates": 2, "dead-letter": 1},
            },
        },
        "slack": {"base_url": slack.base_url, "default_channel": "#bench", "min_interval": 0},
        "digest": {"time": "00:00", "misfire_grace": 0},
    }
    path = tmp / f"{prefix.strip('.')}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _metadata(raw: object) -> dict | None:
    """Message metadata as the stand-in received it (slack-sdk may send it as a JSON string)."""
    if isinstance(raw, str):
        raw = json.loads(raw)
    return raw if isinstance(raw, dict) else None


def _wait_posts(slack: SlackStandIn, target: int, stall: float) -> None:
    """Wait until the stand-in holds ``target`` posts, or none has arrived for ``stall`` seconds."""
    seen, last = len(slack.posts), time.monotonic()
    while seen < target and time.monotonic() - last < stall:
        time.sleep(0.05)
        if len(slack.posts) != seen:
            seen, last = len(slack.posts), time.monotonic()
    if seen < target:
        print(f"  (stopped waiting: {seen}/{target} posts, none for {stall:.0f} s)", flush=True)


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
        _wait_posts(slack, len(warm), stall=120)
        base = len(slack.posts)
        sent: dict[str, float] = {}
        batch = items(count, "lat" + prefix)
        for item in batch:
            sent["s-" + item.id] = time.monotonic()  # a story is named after its first article
            bus.publish(RAW, item.id, item)
            time.sleep(1 / rate)
        _wait_posts(slack, base + count, stall=60)
        received = {}
        for call in slack.posts[base:]:
            story_id = ((_metadata(call.params.get("metadata")) or {}).get("event_payload") or {}).get("story_id")
            if story_id in sent:
                received.setdefault(story_id, call.at)
        lat = sorted((received[t] - sent[t]) * 1000 for t in received)
        if not lat:
            print("latency: no alert arrived; the roles' logs end with:")
            for process in roles:
                print(output(process, 1500))
            return
        q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else lat * 99
        updates = len(slack.updates)
        print(
            f"latency publish → Slack stand-in over {len(lat)}/{count} items (published at {rate:.0f}/s; "
            f"{len(slack.posts) - base} posts, {updates} edits seen):"
        )
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
        print(
            f"throughput with {processors} processor instance(s): {got} items in {elapsed:.1f} s = {rate:.0f} items/s"
        )
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
