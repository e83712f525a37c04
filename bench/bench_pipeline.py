"""The embedded daemon on the real June stream: items/s end to end, with SQLite or PostgreSQL state.

The stream: ../shared/corpus/battery_news/news-until-2026-06-30.json (3,633 real Google News and Naver items of
June 2026), dealt into ``--feeds`` RSS feeds (default 12) by a hash of the item id and served by our local HTTP
server (tests/servers/http.py); ``--repeat N`` serves the stream N times over with new ids (and earlier times),
in N times as many feeds. Alerts go to the Slack Web API stand-in (tests/servers/slack.py) with the per-channel
pacing off (it would measure Slack's limit, not ours).

Each run is ``newsradar run --once`` (one process: collect, extract+match, group, notify on the SQLite bus), timed
as the process's wall clock, start-up included, with ``--state sqlite`` (the state file under the run's
state_dir) and/or ``--state postgres`` (a server started by tests/servers/postgres.py on a temporary directory).
The roles on Kafka, with one and two processors, are measured by bench/bench_kafka.py.

    .venv/bin/python bench/bench_pipeline.py [--state sqlite postgres] [--repeat 1]

Prints items/s and alerts posted; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib
from contextlib import ExitStack
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers.http import HttpServer  # noqa: E402
from tests.servers.postgres import running_server  # noqa: E402
from tests.servers.slack import TOKEN, SlackStandIn, serve_slack  # noqa: E402

JUNE = ROOT.parent / "shared" / "corpus" / "battery_news" / "news-until-2026-06-30.json"


def stream(repeat: int) -> list[dict[str, Any]]:
    """The June items, ``repeat`` times over (pass k: ids suffixed, times moved k * 31 days back).

    Back, not forward: from a few passes on, later months would be in the future of a run in December 2026,
    and the collectors take such a date for a wrong one (a warning per item, and the fetch time instead).
    """
    items = json.loads(JUNE.read_text(encoding="utf-8"))["articles"]
    out = []
    for k in range(repeat):
        for item in items:
            when = datetime.fromisoformat(item["published"]) - timedelta(days=31 * k)
            out.append({**item, "id": f"{item['id']}-{k}" if k else item["id"], "published": when})
    return out


def feed_xml(name: str, items: list[dict[str, Any]], base: str) -> bytes:
    """An RSS 2.0 feed of ``items`` (links stay on our server: nothing reaches the internet)."""
    entries = []
    for item in items:
        entries.append(
            f"<item><title>{escape(item['title'])}</title><link>{base}/a/{item['id']}</link>"
            f"<guid isPermaLink=\"false\">{item['id']}</guid><pubDate>{format_datetime(item['published'])}</pubDate>"
            f"<description>{escape(item.get('summary') or '')}</description></item>"
        )
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{name}</title>'
            f"<link>{base}</link><description>bench</description>{''.join(entries)}</channel></rss>").encode()


def serve_feeds(http: HttpServer, items: list[dict[str, Any]], feeds: int) -> list[dict[str, Any]]:
    """Deal the items into ``feeds`` feeds; returns the source entries of the config."""
    dealt: list[list[dict[str, Any]]] = [[] for _ in range(feeds)]
    for item in items:
        dealt[zlib.crc32(item["id"].encode()) % feeds].append(item)
    sources = []
    for i, chunk in enumerate(dealt):
        path = f"/feed/{i}.xml"
        http.add(path, feed_xml(f"feed {i}", chunk, http.url("").rstrip("/")),
                 headers={"Content-Type": "application/rss+xml; charset=utf-8"})
        sources.append({"name": f"feed-{i}", "kind": "rss", "url": http.url(path), "interval": 3600, "jitter": 0})
    return sources


def config(tmp: Path, sources: list[dict[str, Any]], slack: SlackStandIn, bus: dict[str, Any],
           state: dict[str, Any], extra: dict[str, Any] | None = None) -> Path:  # fmt: skip
    settings = {
        "state_dir": str(tmp / "state"),
        "sources": sources,
        "bus": bus,
        **({"state": state} if state.get("kind", "sqlite") != "sqlite" else {}),
        "http": {"per_host_delay": 0, "per_host_concurrency": 8, "respect_robots": False},
        # the June stream is months old (dated items): alert it all, as before issue 18's alert age
        "slack": {"base_url": slack.base_url, "min_interval": 0, "default_channel": "#bench",
                  "alert_max_age_hours": 1e6},
        "digest": {"recipients": []},
        **(extra or {}),
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    return path


def newsradar(config_path: Path, *args: str, env: dict[str, str]) -> subprocess.Popen:
    """Start one newsradar command; its output goes to a log file beside the config (the child keeps it open)."""
    log_path = config_path.parent / f"{'-'.join(args).replace('/', '_')}-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        return subprocess.Popen([sys.executable, "-m", "newsradar.cli", "--config", str(config_path), *args],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip


def posts(slack: SlackStandIn) -> int:
    return len(slack.posts)


def run_embedded(tmp: Path, sources: list[dict[str, Any]], slack: SlackStandIn, state: dict[str, Any],
                 env: dict[str, str], extra: dict[str, Any] | None = None) -> tuple[float, int]:  # fmt: skip
    path = config(tmp, sources, slack, {"kind": "embedded"}, state, extra)
    before = posts(slack)
    started = time.monotonic()
    process = newsradar(path, "run", "--once", env=env)
    if process.wait(timeout=3600) != 0:
        raise SystemExit(f"run --once failed; see the logs in {tmp}")
    return time.monotonic() - started, posts(slack) - before


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--state", nargs="+", default=["sqlite"], choices=["sqlite", "postgres"])
    parser.add_argument("--repeat", type=int, default=1, help="serve the stream this many times over, new ids")
    parser.add_argument("--feeds", type=int, default=12, help="feeds per pass of the stream")
    parser.add_argument("--own-process", action="store_true",
                        help="processor.own_process: the processor stages in a process of their own")
    parser.add_argument("--sweep-processes", type=int, default=1, help="polling.processes (a sweep's workers)")
    args = parser.parse_args()
    if not JUNE.is_file():
        print(f"the June stream is not at {JUNE} (the shared folder beside the repo)", file=sys.stderr)
        return 2
    items = stream(args.repeat)
    env = {**os.environ, "SLACK_BOT_TOKEN": TOKEN}
    env.pop("SLACK_WEBHOOK_URL", None)
    print(f"{len(items):,} items in {args.feeds * args.repeat} feeds; one core each process, 2 cores in all")
    for state_kind in args.state:
        with tempfile.TemporaryDirectory() as tmpdir, HttpServer() as http, serve_slack() as slack, \
                ExitStack() as stack:  # fmt: skip
            tmp = Path(tmpdir)
            sources = serve_feeds(http, items, args.feeds * args.repeat)
            run_env = dict(env)
            if state_kind == "postgres":
                run_env["NEWSRADAR_DATABASE_URL"] = stack.enter_context(running_server()).new_database()
            seconds, alerts = run_embedded(tmp, sources, slack, {"kind": state_kind}, run_env,
                                           {"processor": {"own_process": args.own_process},
                                            "polling": {"processes": args.sweep_processes}})
            print(f"embedded  {state_kind:9} {len(items) / seconds:8,.0f} items/s   "
                  f"({len(items):,} items in {seconds:.1f} s, {alerts:,} alerts posted)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
