"""A sweep spread over worker processes (``polling.processes``): one poll of every source, using every core.

A sweep is CPU-bound (HTTP parsing of a thousand answers, feedparser on the changed feeds) and one Python
process runs on one core at a time, so past a few hundred sources more threads do not help. Each worker
process has its own CollectStage (its own Fetcher, state-store and bus connections) and polls the sources
given to it exactly as the daemon would: publish, then mark seen and save validators (at-least-once). All
sources of one host go to the same task, so the per-host gate of the worker running it keeps
``http.per_host_delay`` and ``per_host_concurrency`` within the sweep as one process would. A sweep is cut into
a few tasks per worker (whole hosts each), taken as workers come free, so that one worker is not left with
all the changed feeds. A worker's counters come back with its summaries and are
added to the daemon's metrics. Workers are started once (spawned: no fork of a threaded daemon) and kept
for the next sweeps; a worker that dies is reported and its sources are polled in the daemon instead.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.util
import os
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any
from urllib.parse import urlsplit

from newsradar.collect import CollectStage, PollSummary
from newsradar.metrics import ComponentDelta, Metrics, merge_metrics
from newsradar.settings import Settings

log = logging.getLogger(__name__)

TASKS_PER_PROCESS = 4  # a sweep is cut into this many tasks per worker process (whole hosts each)


def host_groups(settings: Settings, names: Sequence[str], count: int) -> list[list[str]]:
    """``names`` in about ``count`` lists of about equal size, every host's sources in one list.

    The host is the source URL's host and port (what the fetcher's per-host gate keys on); a source without
    a URL is its own group. The biggest hosts are dealt first, each into the list with the fewest sources so far
    (a host bigger than the mean makes its list bigger).
    """
    urls = {s.name: s.url for s in settings.sources}
    groups: dict[str, list[str]] = {}
    for name in names:
        try:
            host = (urlsplit(urls.get(name) or "").netloc or "").lower()
        except ValueError:
            host = ""
        groups.setdefault(host or f"source:{name}", []).append(name)
    lists: list[list[str]] = [[] for _ in range(max(1, min(count, len(groups))))]
    for group in sorted(groups.values(), key=len, reverse=True):  # biggest first, each into the shortest list
        min(lists, key=len).extend(group)
    return [chunk for chunk in lists if chunk]


# -- the worker process ----------------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _start_worker(settings: Settings, shard: tuple[int, int]) -> None:
    """Initializer of a worker process: open the store and the bus and build the collectors, once."""
    from newsradar.bus import open_bus
    from newsradar.store import open_store

    store = open_store(settings)
    bus = open_bus(settings)
    # The stage (and its fetcher's per-host gate) lives as long as the worker: spacing holds across sweeps.
    _WORKER.update(settings=settings, store=store, bus=bus, stage=CollectStage(settings, store, bus, Metrics(), shard))
    multiprocessing.util.Finalize(None, _close_worker, exitpriority=10)
    threading.Thread(target=_exit_with_parent, name="parent-watch", daemon=True).start()


def _exit_with_parent() -> None:
    """End this worker when the daemon is gone (kill -9): the pool's queues would keep it waiting forever.

    Whatever it was polling is safe to cut short: items are marked seen only after they are published.
    """
    parent = multiprocessing.parent_process()
    if parent is not None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)


def _close_worker() -> None:
    for key in ("stage", "bus", "store"):
        closer = _WORKER.pop(key, None)
        if closer is not None:
            closer.close()


def _poll_in_worker(names: list[str]) -> tuple[list[PollSummary], dict[str, ComponentDelta]]:
    """Poll ``names`` in this worker; the summaries and what was counted.

    ``polling.workers`` (sources polled at once in a sweep) is shared out between the processes: more threads
    in one process only contend for its interpreter lock (4 threads in each of 2 processes: 2.0 s a sweep
    of the bench, 2 in each: 1.8 s).
    """
    settings: Settings = _WORKER["settings"]
    stage: CollectStage = _WORKER["stage"]
    metrics = stage.metrics = Metrics()  # this sweep's counts only: the daemon adds them to its own
    threads_each = -(-settings.polling.workers // settings.polling.processes)  # ceiling
    with ThreadPoolExecutor(max_workers=threads_each) as threads:
        summaries = list(threads.map(stage.poll, names))
    deltas = {
        comp.name: ComponentDelta(Counter(comp.counts), Counter(comp.error_kinds), comp.last_error,
                                  comp.last_success_at is not None, dict(comp.info))
        for comp in metrics.components()
    }
    return summaries, deltas


class SweepPool:
    """The worker processes of a daemon's sweeps, started on first use and kept until ``close``."""

    def __init__(self, settings: Settings, shard: tuple[int, int], metrics: Metrics) -> None:
        self.settings = settings
        self.shard = shard
        self.metrics = metrics
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.settings.polling.processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(self.settings, self.shard),
            )
        return self._pool

    def poll(
        self, names: Sequence[str], fallback: Callable[[str], PollSummary], done: Callable[[PollSummary], None]
    ) -> list[PollSummary]:
        """Poll ``names`` over the workers; ``done`` is called in this process for every summary.

        If a worker fails (it died, or could not open the store or the bus) the failure is logged with the
        sources it held, the pool is started afresh next sweep, and those sources are polled here by
        ``fallback`` (the daemon's own CollectStage.poll).
        """
        # Several tasks per worker, taken as workers come free: one worker is not left with every busy host.
        buckets = host_groups(self.settings, names, TASKS_PER_PROCESS * self.settings.polling.processes)
        try:
            futures = self._submit(buckets)
        except BrokenProcessPool as exc:  # a worker died since the last sweep: start new ones
            log.warning("sweep workers were lost since the last sweep (%s); starting new ones", exc)
            self.close()
            futures = self._submit(buckets)
        summaries: list[PollSummary] = []
        for bucket, future in futures:
            try:
                polled, deltas = future.result()
            except Exception as exc:  # noqa: BLE001 - a dead worker must not lose its sources' poll
                log.error("sweep worker failed (%s: %s); polling its %d sources in the daemon (from %s)",
                          type(exc).__name__, exc, len(bucket), bucket[0])  # fmt: skip
                polled = [fallback(name) for name in bucket]
            else:
                merge_metrics(self.metrics, deltas)
                for summary in polled:
                    self.metrics.observe_poll(summary.source, summary.seconds)
            for summary in polled:
                done(summary)
            summaries.extend(polled)
        if any(f.exception() is not None for _, f in futures):
            self.close()  # a broken pool takes no more work: the next sweep starts a new one
        return summaries

    def _submit(self, buckets: list[list[str]]) -> list[tuple[list[str], Future[Any]]]:
        pool = self._executor()
        return [(bucket, pool.submit(_poll_in_worker, bucket)) for bucket in buckets]

    def close(self) -> None:
        """Stop the workers (each closes its stage, bus and store)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
