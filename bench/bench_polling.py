"""Polling at scale: one sweep of 1,000 feeds on loopback, 90 % answering 304 (prints figures, asserts nothing).

A feed farm (tests/servers/feedfarm.py, its own process) serves N feeds over A loopback addresses
(127.0.0.1 … 127.0.0.A). After a first sweep has stored every feed's ETag, a tenth of the feeds get two new
entries and the rest stay unchanged; then one sweep is timed:

- newsradar: the daemon's own sweep (``Daemon.poll_all`` of a collector: conditional GET, feedparser on the
  changed feeds, new items published to the embedded bus, seen ids and ETags committed to the state store);
- baseline: a sequential ``feedparser.parse(url, etag=…)`` loop over the same feeds in the same state
  (fetch and parse only: nothing stored).

    .venv/bin/python bench/bench_polling.py [--feeds 1000] [--addresses 50] [--rounds 3] [--processes 2] [--quick]

``--processes`` is ``polling.processes``: the sweep spread over that many worker processes (newsradar/sweep.py),
started by the first sweep and kept, so the timed sweeps do not include their start; 1 polls in the daemon's
own process as before. Both sides share the machine with the feed farm's process.

``http.per_host_delay`` is 0 here (the farm is ours, and 20 feeds per address at the default one-second
spacing would measure our politeness, not our speed); ``per_host_concurrency`` keeps its default of 2.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import feedparser  # noqa: E402

from newsradar.daemon import Daemon  # noqa: E402
from newsradar.settings import parse  # noqa: E402
from tests.servers.feedfarm import FeedFarm  # noqa: E402


def _settings(farm: FeedFarm, state: Path, workers: int | None, processes: int = 1) -> object:
    data: dict[str, object] = {
        "state_dir": str(state),
        "http": {"per_host_delay": 0.0},
        "sources": [{"name": f"feed-{i}", "url": url, "interval": 600} for i, url in enumerate(farm.urls())],
    }
    polling: dict[str, int] = {"processes": processes}
    if workers is not None:
        polling["workers"] = workers
    data["polling"] = polling
    return parse(data)


def newsradar_sweeps(
    farm: FeedFarm, rounds: int, fraction: float, workers: int | None, processes: int
) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        daemon = Daemon(_settings(farm, Path(tmp), workers, processes), role="collector")  # type: ignore[arg-type]
        try:
            started = time.perf_counter()
            first = daemon.poll_all()
            warm = time.perf_counter() - started
            errors = [s for s in first if s.error]
            print(f"  first sweep (every feed 200, {sum(s.new_items for s in first)} items): {warm:.2f} s"
                  + (f", {len(errors)} errors, e.g. {errors[0].error}" if errors else ""))
            farm.counts()
            times = []
            for _ in range(rounds):
                bumped = farm.bump(fraction)
                started = time.perf_counter()
                summaries = daemon.poll_all()
                times.append(time.perf_counter() - started)
                counts = farm.counts()
                new = sum(s.new_items for s in summaries)
                failed = sum(1 for s in summaries if s.error)
                print(f"  sweep: {times[-1]:.2f} s  ({bumped} feeds changed; served {counts}; "
                      f"{new} new items; {failed} errors)")
        finally:
            daemon.close()
    return times


def baseline_sweeps(farm: FeedFarm, rounds: int, fraction: float) -> list[float]:
    urls = farm.urls()
    etags: dict[str, str | None] = {}
    for url in urls:
        etags[url] = feedparser.parse(url).get("etag")
    farm.counts()
    times = []
    for _ in range(rounds):
        farm.bump(fraction)
        started = time.perf_counter()
        entries = 0
        for url in urls:
            parsed = feedparser.parse(url, etag=etags[url])
            if parsed.get("status") == 200:
                etags[url] = parsed.get("etag")
                entries += len(parsed.entries)
        times.append(time.perf_counter() - started)
        print(f"  sweep: {times[-1]:.2f} s  (served {farm.counts()}; {entries} entries parsed)")
    return times


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--addresses", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--changed", type=float, default=0.1, help="share of feeds changed before each sweep")
    parser.add_argument("--workers", type=int, default=None, help="polling.workers (default: the config's)")
    parser.add_argument("--processes", type=int, default=2,
                        help="polling.processes: worker processes of the sweep (1: the daemon's own process)")
    parser.add_argument("--quick", action="store_true", help="one round (make bench)")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    logging.basicConfig(level=logging.ERROR)

    print(f"{args.feeds} feeds over {args.addresses} loopback addresses, {args.changed:.0%} changed per sweep")
    with FeedFarm(args.feeds, args.addresses) as farm:
        print(f"newsradar (Daemon.poll_all: fetch, parse, publish, commit; polling.processes {args.processes}):")
        ours = newsradar_sweeps(farm, rounds, args.changed, args.workers, args.processes)
        print("baseline (sequential feedparser.parse with ETag):")
        base = baseline_sweeps(farm, rounds, args.changed)
    mine, theirs = statistics.median(ours), statistics.median(base)
    print(f"\nsweep of {args.feeds} feeds, median (min-max) of {rounds}: newsradar {_spread(ours)}, "
          f"sequential feedparser {_spread(base)} ({theirs / mine:.1f}x)")


if __name__ == "__main__":
    main()
