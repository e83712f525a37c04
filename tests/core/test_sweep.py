"""A sweep spread over worker processes (polling.processes): nothing lost, nothing doubled, hosts kept whole.

Real parts only: a feed farm (tests/servers/feedfarm.py, its own process) on several loopback addresses, the
embedded bus and the SQLite state store, real spawned worker processes.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from newsradar.daemon import Daemon
from newsradar.settings import Settings, parse
from newsradar.sweep import host_groups
from tests.servers.feedfarm import FeedFarm

RAW = "raw-items"


def _settings(farm: FeedFarm, state_dir: Path, processes: int = 2, **more: object) -> Settings:
    return parse({
        **more,
        "state_dir": str(state_dir),
        "http": {"per_host_delay": 0.0},
        "polling": {"processes": processes, "workers": 2},
        "sources": [{"name": f"feed-{i}", "url": url, "interval": 600} for i, url in enumerate(farm.urls())],
    })


def _published(daemon: Daemon) -> Counter[tuple[str, str]]:
    """Every (source, item id) on the raw topic, with how many times it was published."""
    consumer = daemon.bus.consumer(RAW, "test-sweep")
    ids: Counter[tuple[str, str]] = Counter()
    try:
        while batch := consumer.poll(max_records=1000, timeout=0.2):
            ids.update((d.event.source, d.key) for d in batch)
            consumer.commit(batch)
    finally:
        consumer.close()
    return ids


@pytest.fixture
def farm() -> FeedFarm:
    with FeedFarm(feeds=40, addresses=5, items=5) as farm:
        yield farm


def test_a_process_sweep_publishes_every_new_item_once_and_records_it(farm: FeedFarm, tmp_path: Path) -> None:
    daemon = Daemon(_settings(farm, tmp_path), role="collector")
    try:
        first = daemon.poll_all()
        assert sorted(s.source for s in first) == sorted(f"feed-{i}" for i in range(40))
        assert [s.error for s in first if s.error] == []
        assert sum(s.new_items for s in first) == 40 * 5
        assert farm.counts() == {200: 40}

        assert farm.bump(0.25) == 10  # feeds 0, 4, 8 … get two new entries each
        second = daemon.poll_all()
        assert farm.counts() == {200: 10, 304: 30}  # the workers sent the validators the first sweep stored
        assert {s.source: s.new_items for s in second if s.new_items} == {f"feed-{i}": 2 for i in range(0, 40, 4)}
        assert sum(s.not_modified for s in second) == 30

        third = daemon.poll_all()  # nothing changed: nothing new, nothing published again
        assert sum(s.new_items for s in third) == 0 and farm.counts() == {304: 40}

        ids = _published(daemon)
        assert len(ids) == 40 * 5 + 10 * 2 and set(ids.values()) == {1}
        assert all(daemon.store.is_seen(source, item) for source, item in ids)  # recorded after publishing
        # the workers' counts reach the daemon's health
        assert daemon.metrics.component("source:feed-0").counts["emitted"] == 5 + 2
        assert daemon.metrics.component("source:feed-1").counts["emitted"] == 5
    finally:
        daemon.close()


def test_a_process_sweep_on_postgresql_publishes_once_and_records(
    farm: FeedFarm, tmp_path: Path, postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSRADAR_DATABASE_URL", postgres_dsn)  # spawned workers inherit the environment
    daemon = Daemon(_settings(farm, tmp_path, state={"kind": "postgres", "pool_size": 2}), role="collector")
    try:
        assert type(daemon.store).__name__ == "PostgresStore"
        assert sum(s.new_items for s in daemon.poll_all()) == 40 * 5
        farm.counts()
        farm.bump(0.25)
        second = daemon.poll_all()
        assert farm.counts() == {200: 10, 304: 30} and sum(s.new_items for s in second) == 10 * 2
        ids = _published(daemon)
        assert len(ids) == 40 * 5 + 10 * 2 and set(ids.values()) == {1}
        assert all(daemon.store.is_seen(source, item) for source, item in ids)
    finally:
        daemon.close()


def test_a_sweep_whose_workers_were_killed_starts_new_ones_and_loses_nothing(
    farm: FeedFarm, tmp_path: Path
) -> None:
    daemon = Daemon(_settings(farm, tmp_path), role="collector")
    try:
        before = {p.pid for p in multiprocessing.active_children()}  # children of earlier tests, if any
        assert sum(s.new_items for s in daemon.poll_all()) == 40 * 5
        workers = [p for p in multiprocessing.active_children() if p.pid not in before]
        assert workers, "the sweep ran in worker processes"
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):  # already gone: as good as killed
                os.kill(worker.pid, signal.SIGKILL)  # type: ignore[arg-type]
            worker.join(5)
        farm.counts()
        farm.bump(0.5)
        second = daemon.poll_all()
        assert [s.error for s in second if s.error] == []
        assert sum(s.new_items for s in second) == 20 * 2
        ids = _published(daemon)
        assert len(ids) == 40 * 5 + 20 * 2 and set(ids.values()) == {1}
    finally:
        daemon.close()


def test_one_process_polls_in_the_daemon_itself(farm: FeedFarm, tmp_path: Path) -> None:
    daemon = Daemon(_settings(farm, tmp_path, processes=1), role="collector")
    try:
        before = {p.pid for p in multiprocessing.active_children()}
        assert sum(s.new_items for s in daemon.poll_all()) == 40 * 5
        assert {p.pid for p in multiprocessing.active_children()} <= before
    finally:
        daemon.close()


def test_host_groups_keep_every_host_in_one_task_and_balance_them(tmp_path: Path) -> None:
    urls = [f"http://127.0.0.{1 + i % 7}:80{i % 7}/feed/{i}.xml" for i in range(100)] + ["file:///tmp/a.xml"]
    settings = parse({"state_dir": str(tmp_path),
                      "sources": [{"name": f"s{i}", "url": u} for i, u in enumerate(urls)]})
    names = [s.name for s in settings.sources]
    groups = host_groups(settings, names, 4)
    assert sorted(n for g in groups for n in g) == sorted(names)  # each source exactly once
    host_of = {s.name: urlsplit(s.url).netloc or s.name for s in settings.sources}
    for host in set(host_of.values()):
        assert sum(any(host_of[n] == host for n in g) for g in groups) == 1, host
    assert len(groups) == 4 and max(map(len, groups)) <= 2 * min(map(len, groups))
    assert host_groups(settings, names[:3], 8) == [["s0"], ["s1"], ["s2"]]

