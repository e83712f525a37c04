"""End-to-end latency and processor throughput through a real Kafka broker (prints figures, asserts nothing).

1. Latency: N distinct relevant items are published to raw-items one at a time (paced, 50/s by default), and the
   time from each publish to the Slack stand-in's receipt of its alert is measured: processor and notifier run
   as separate `newsradar run --role …` processes. Prints p50/p90/p99/max. (Distinct made-up stories, so each
   is one post: in real news most items join a story and become edits, which have no "first alert" to time.)
2. Throughput: the real June battery_news stream (3,633 Google News and Naver items; ``--repeat N`` serves it N
   times with new ids) is published at once as raw items, and the time until both processor consumer groups
   (extract+match, then grouping) have committed everything is measured, with one and then two processor
   instances. ``--synthetic`` uses N made-up distinct items instead.

Each run uses ``--state sqlite`` (one state file, the instances on one host) and/or ``--state postgres`` (a
real server started from deploy/postgres on a temporary directory; what roles on several hosts use).

    .venv/bin/python bench/bench_kafka.py [--state sqlite postgres] [--repeat 1] [--items 1000] [--quick]

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
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from newsradar.bus.base import ARTICLES, RAW  # noqa: E402
from newsradar.bus.kafka import KafkaBus  # noqa: E402
from newsradar.events import RawItem  # noqa: E402
from tests.e2e.processes import output, start, stop  # noqa: E402
from tests.servers.kafka import KafkaBroker, _free_ports, ensure_jars  # noqa: E402
from tests.servers.postgres import PostgresServer, running_server  # noqa: E402
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


JUNE = ROOT.parent / "shared" / "corpus" / "battery_news" / "news-until-2026-06-30.json"
PARTITIONS = {"raw-items": 4, "articles": 1, "story-updates": 2, "dead-letter": 1}


def june(repeat: int) -> list[RawItem]:
    """The June items as raw items, ``repeat`` times over (pass k: ids suffixed, times shifted by k * 31 days)."""
    articles = json.loads(JUNE.read_text(encoding="utf-8"))["articles"]
    now = datetime.now(timezone.utc)
    out = []
    for k in range(repeat):
        for a in articles:
            when = datetime.fromisoformat(a["published"]) + timedelta(days=31 * k)
            item_id = f"{a['id']}-{k}" if k else a["id"]
            out.append(RawItem(id=item_id, source=a.get("source") or "june", outlet=a.get("outlet") or "",
                               url=f"https://b/{item_id}", canonical_url=f"https://b/{item_id}", title=a["title"],
                               body=a.get("summary") or "", published_at=when, fetched_at=now))  # fmt: skip
    return out


class State:
    """Where each run keeps its state: a SQLite file per run, or a fresh database on one PostgreSQL server."""

    def __init__(self, kind: str, server: PostgresServer | None) -> None:
        self.kind, self.server = kind, server
        self.env: dict[str, str] = {}

    def fresh(self) -> dict:
        if self.server is None:
            return {"kind": "sqlite"}
        self.env = {"NEWSRADAR_DATABASE_URL": self.server.new_database()}
        return {"kind": "postgres", "pool_size": 2}


def config(tmp: Path, bootstrap: str, prefix: str, slack: SlackStandIn, state: State) -> Path:
    data = {
        "state_dir": str(tmp / prefix),
        "state": state.fresh(),
        "bus": {
            "kind": "kafka",
            "session_timeout": 6,
            "kafka": {
                "bootstrap_servers": bootstrap,
                "topic_prefix": prefix,
                "partitions": PARTITIONS,
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


def latency(tmp: Path, bootstrap: str, slack: SlackStandIn, count: int, rate: float, state: State) -> None:
    prefix = f"lat{uuid.uuid4().hex[:6]}."
    cfg = config(tmp, bootstrap, prefix, slack, state)
    bus = KafkaBus(bootstrap, topic_prefix=prefix)
    bus.ensure_topics(PARTITIONS)
    roles = [start(cfg, "--role", "processor", name="p", env=state.env),
             start(cfg, "--role", "notifier", name="n", env=state.env)]
    try:
        warm = items(5, "warm" + prefix)
        before = len(slack.posts)  # the stand-in serves every run of this process
        for item in warm:
            bus.publish(RAW, item.id, item)
        _wait_posts(slack, before + len(warm), stall=120)  # both roles are up and working
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


def _lag(admin: KafkaAdminClient, probe: KafkaConsumer, prefix: str) -> int:
    """Messages not yet committed by the extract+match group on raw-items plus the grouper on articles."""
    behind = 0
    for group, topic in (("newsradar-processor", RAW), ("newsradar-grouper", ARTICLES)):
        parts = [TopicPartition(prefix + topic, p) for p in range(PARTITIONS[topic])]
        ends = probe.end_offsets(parts)
        done = admin.list_group_offsets({prefix + group: parts}).get(prefix + group, {})
        behind += sum(ends[tp] - (done[tp].offset if tp in done and done[tp].offset >= 0 else 0) for tp in parts)
    return behind


def throughput(tmp: Path, bootstrap: str, slack: SlackStandIn, burst: list[RawItem], processors: int,
               state: State) -> float:  # fmt: skip
    prefix = f"tp{processors}{uuid.uuid4().hex[:6]}."
    cfg = config(tmp, bootstrap, prefix, slack, state)
    bus = KafkaBus(bootstrap, topic_prefix=prefix)
    bus.ensure_topics(PARTITIONS)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    probe = KafkaConsumer(bootstrap_servers=bootstrap)
    procs = [start(cfg, "--role", "processor", name=f"p{i}", env=state.env) for i in range(processors)]
    try:
        for item in items(20, "warm" + prefix):  # wait until every instance has joined and is working
            bus.publish(RAW, item.id, item)
        deadline = time.monotonic() + 120
        while _lag(admin, probe, prefix) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(8)  # let the group settle (a join during the burst would pause everyone)
        started = time.monotonic()
        bus.publish_many(RAW, [(item.id, item) for item in burst])
        published = time.monotonic() - started
        deadline = time.monotonic() + 1800
        while (left := _lag(admin, probe, prefix)) and time.monotonic() < deadline:
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        rate = (len(burst) - left) / elapsed
        print(f"throughput, {state.kind:8} state, {processors} processor instance(s): {len(burst) - left:,} items "
              f"through extract+match and grouping in {elapsed:.1f} s (published in {published:.1f} s) "
              f"= {rate:,.0f} items/s", flush=True)  # fmt: skip
        return rate
    finally:
        for process in procs:
            stop(process)
        admin.close()
        probe.close()
        bus.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1000, help="items in the latency run (and --synthetic)")
    parser.add_argument("--rate", type=float, default=50.0, help="items per second published in the latency run")
    parser.add_argument("--state", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"])
    parser.add_argument("--repeat", type=int, default=1, help="the June stream this many times over, new ids")
    parser.add_argument("--synthetic", action="store_true", help="made-up distinct items, not the June stream")
    parser.add_argument("--quick", action="store_true", help="200 items, synthetic, SQLite only")
    args = parser.parse_args()
    count = 200 if args.quick else args.items
    kinds = ["sqlite"] if args.quick else args.state
    if not (args.synthetic or args.quick) and not JUNE.is_file():
        print(f"the June stream is not at {JUNE} (the shared folder beside the repo)", file=sys.stderr)
        return 2
    burst = items(count, "tp") if args.synthetic or args.quick else june(args.repeat)
    ensure_jars()
    with tempfile.TemporaryDirectory() as tmpdir, serve_slack() as slack, ExitStack() as stack:
        tmp = Path(tmpdir)
        server = stack.enter_context(running_server()) if "postgres" in kinds else None
        broker = KafkaBroker(tmp / "kafka", *_free_ports(2))
        broker.start()
        try:
            print(f"Kafka broker at {broker.bootstrap}; latency over {count} items at {args.rate:.0f}/s; "
                  f"throughput over {len(burst):,} {'made-up' if args.synthetic or args.quick else 'real June'} "
                  "items; 2 cores shared by broker, database, bench and roles\n", flush=True)
            for kind in kinds:
                state = State(kind, server if kind == "postgres" else None)
                print(f"== state: {kind}", flush=True)
                latency(tmp, broker.bootstrap, slack, count, args.rate, state)
                one = throughput(tmp, broker.bootstrap, slack, burst, 1, state)
                two = throughput(tmp, broker.bootstrap, slack, burst, 2, state)
                print(f"ratio two/one processor instances ({kind}): {two / one:.2f}x\n", flush=True)
        finally:
            broker.stop(keep=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
