"""Counters and health: every component counts received / emitted / dropped (by reason) / errors.

A component is healthy while it has succeeded recently: a source is unhealthy
once it has been silent (no successful poll) for more than twice its interval,
and any component with a permanent failure (bad Slack token, unknown channel)
is unhealthy until it succeeds again. The daemon writes a snapshot to
``{state_dir}/health.json`` so operators and probes can read it.

The same counts are exposed to Prometheus (``registry``, served at /metrics): each daemon has its own
CollectorRegistry, counters are read from the components at scrape time (``_Exposition``), and the
durations are prometheus-client histograms observed where they happen. Names follow Prometheus
conventions: ``newsradar_<what>_total`` counters, ``_seconds`` histograms, ``_timestamp_seconds`` gauges.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

T = TypeVar("T")
# No "<histogram>_created" series: the text format shows them as extra gauges nobody graphs (process-wide switch;
# newsradar is the only user of prometheus-client in its process).
disable_created_metrics()
SOURCE_PREFIX = "source:"
_KIND = re.compile(r"([A-Za-z_][A-Za-z0-9_]{0,60}):")
# Seconds: polls and stage batches take milliseconds to a minute; an alert's lag seconds to hours.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_LAG_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)


@dataclass
class ComponentMetrics:
    """The counts and last success of one component (a source, a stage, a notifier)."""

    name: str
    interval: float | None = None
    counts: Counter[str] = field(default_factory=Counter)
    error_kinds: Counter[str] = field(default_factory=Counter)
    last_success_at: float | None = None
    last_error: str | None = None
    permanent_error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)  # figures that are not counters (e.g. a quota)
    started_at: float = field(default_factory=time.time)

    def healthy(self, now: float) -> bool:
        if self.permanent_error:
            return False
        if self.interval is None:
            return True
        reference = self.last_success_at or self.started_at
        return now - reference <= 2 * self.interval


class Metrics:
    """A thread-safe registry of component metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._components: dict[str, ComponentMetrics] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_Exposition(self))
        self._poll_seconds = Histogram(
            "newsradar_source_poll_duration_seconds", "Time one poll of a source took (fetch, parse, publish).",
            ["source"], buckets=_DURATION_BUCKETS, registry=self.registry)
        self._batch_seconds = Histogram(
            "newsradar_stage_batch_duration_seconds", "Time a stage took for one batch, from poll to commit.",
            ["stage"], buckets=_DURATION_BUCKETS, registry=self.registry)
        self._process_seconds = Histogram(
            "newsradar_stage_process_duration_seconds", "Time a stage took to process one event.",
            ["stage"], buckets=_DURATION_BUCKETS, registry=self.registry)
        self._lag_seconds = Histogram(
            "newsradar_notify_lag_seconds", "From a copy's fetch (published to the bus) to the alert showing it "
            "delivered.", buckets=_LAG_BUCKETS, registry=self.registry)

    def component(self, name: str, interval: float | None = None) -> ComponentMetrics:
        with self._lock:
            comp = self._components.get(name)
            if comp is None:
                comp = self._components[name] = ComponentMetrics(name, interval)
            elif interval is not None:
                comp.interval = interval
            return comp

    def count(self, name: str, key: str, n: int = 1) -> None:
        """Add ``n`` to counter ``key`` (e.g. 'received', 'emitted', 'dropped:seen', 'errors')."""
        comp = self.component(name)
        with self._lock:
            comp.counts[key] += n

    def success(self, name: str) -> None:
        comp = self.component(name)
        with self._lock:
            comp.last_success_at = time.time()
            comp.permanent_error = None

    def info(self, name: str, figures: dict[str, Any]) -> None:
        """Replace the non-counter figures health shows for ``name`` (e.g. the Naver budget of today)."""
        comp = self.component(name)
        with self._lock:
            comp.info = dict(figures)

    def error(self, name: str, message: str, permanent: bool = False, kind: str | None = None) -> None:
        """Count an error; ``kind`` (an exception class name, 'item', ...) defaults to the message's leading
        ``Name:`` when there is one, else 'other'."""
        comp = self.component(name)
        if kind is None:
            found = _KIND.match(message)
            kind = found.group(1) if found else "other"
        with self._lock:
            comp.counts["errors"] += 1
            comp.error_kinds[kind] += 1
            comp.last_error = message
            if permanent:
                comp.permanent_error = message

    # -- durations (Prometheus histograms) --------------------------------------------------------
    def observe_poll(self, source: str, seconds: float) -> None:
        self._poll_seconds.labels(source=source).observe(seconds)

    def observe_batch(self, stage: str, seconds: float) -> None:
        self._batch_seconds.labels(stage=stage).observe(seconds)

    def timed_process(self, stage: str, process: Callable[[Any], T], event: Any) -> T:
        """Run ``process(event)`` and observe how long it took (also when it raises)."""
        started = time.perf_counter()
        try:
            return process(event)
        finally:
            self.observe_process(stage, time.perf_counter() - started)

    def observe_process(self, stage: str, seconds: float) -> None:
        """One event's processing time (``timed_process``, or a stage's in another process)."""
        self._process_seconds.labels(stage=stage).observe(seconds)

    def observe_lag(self, seconds: float) -> None:
        self._lag_seconds.observe(max(0.0, seconds))

    def components(self) -> list[ComponentMetrics]:
        """Copies of every component's metrics, for the exposition (no lock held while rendering)."""
        with self._lock:
            return [
                ComponentMetrics(c.name, c.interval, Counter(c.counts), Counter(c.error_kinds), c.last_success_at,
                                 c.last_error, c.permanent_error, dict(c.info), c.started_at)
                for c in self._components.values()
            ]

    def snapshot(self) -> dict[str, Any]:
        now = time.time()
        with self._lock:
            comps = {
                name: {
                    "healthy": c.healthy(now),
                    "counts": dict(c.counts),
                    "last_success_at": c.last_success_at,
                    "last_error": c.last_error,
                    "permanent_error": c.permanent_error,
                    **({"info": dict(c.info)} if c.info else {}),
                }
                for name, c in sorted(self._components.items())
            }
        return {"healthy": all(c["healthy"] for c in comps.values()), "at": now, "components": comps}

    def write(self, path: Path) -> None:
        """Write the snapshot atomically (rename), so a reader never sees half a file."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot(), ensure_ascii=False, indent=2), encoding="utf-8")
        tmp.replace(path)


@dataclass
class ComponentDelta:
    """What a worker process counted for one component (a sweep worker, the processor process), to add up."""

    counts: Counter[str]
    error_kinds: Counter[str]
    last_error: str | None
    succeeded: bool
    info: dict[str, Any]


def merge_metrics(metrics: Metrics, deltas: dict[str, ComponentDelta]) -> None:
    """Add a worker's counts, errors, successes and figures to ``metrics``."""
    for name, delta in deltas.items():
        for key, n in delta.counts.items():
            if key != "errors":  # counted again by metrics.error below
                metrics.count(name, key, n)
        for kind, n in delta.error_kinds.items():
            for _ in range(n):
                metrics.error(name, delta.last_error or kind, kind=kind)
        if delta.succeeded:
            metrics.success(name)
        if delta.info:
            metrics.info(name, delta.info)


class _Exposition(Collector):
    """The component counters as Prometheus families, built at each scrape from ``Metrics``.

    Sources (components named "source:<name>") give newsradar_source_items_*_total; stages (processor,
    grouper, notifier, digest) give newsradar_stage_events_*_total. Counter keys: "received", "emitted",
    "dropped" or "dropped:<reason>", "flagged:<problem>", "dead_lettered"; errors carry their kind.
    """

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        families = {
            "source": self._families("source", "source", "items"),
            "stage": self._families("stage", "stage", "events"),
        }
        for comp in self.metrics.components():
            is_source = comp.name.startswith(SOURCE_PREFIX)
            label = comp.name[len(SOURCE_PREFIX):] if is_source else comp.name
            fam = families["source" if is_source else "stage"]
            fam["received"].add_metric([label], comp.counts.get("received", 0))
            fam["emitted"].add_metric([label], comp.counts.get("emitted", 0))
            for key, n in sorted(comp.counts.items()):
                if key == "dropped" or key.startswith("dropped:"):
                    fam["dropped"].add_metric([label, key.partition(":")[2] or "unspecified"], n)
                elif key.startswith("flagged:"):
                    fam["flagged"].add_metric([label, key.partition(":")[2]], n)
            for kind, n in sorted(comp.error_kinds.items()):
                fam["errors"].add_metric([label, kind], n)
            if not is_source:
                fam["dead_letters"].add_metric([label], comp.counts.get("dead_lettered", 0))
            if comp.last_success_at is not None:
                fam["last_success"].add_metric([label], comp.last_success_at)
        for fam in families.values():
            yield from fam.values()

    @staticmethod
    def _families(prefix: str, label: str, unit: str) -> dict[str, Any]:
        what = "source" if prefix == "source" else "stage"
        out: dict[str, Any] = {
            "received": CounterMetricFamily(f"newsradar_{prefix}_{unit}_received", f"{unit.title()} a {what} took in.",
                                            labels=[label]),
            "emitted": CounterMetricFamily(f"newsradar_{prefix}_{unit}_emitted", f"{unit.title()} a {what} passed on.",
                                           labels=[label]),
            "dropped": CounterMetricFamily(f"newsradar_{prefix}_{unit}_dropped",
                                           f"{unit.title()} a {what} dropped on purpose, by reason.",
                                           labels=[label, "reason"]),
            "errors": CounterMetricFamily(f"newsradar_{prefix}_errors", f"Errors of a {what}, by kind.",
                                          labels=[label, "kind"]),
            "last_success": GaugeMetricFamily(f"newsradar_{prefix}_last_success_timestamp_seconds",
                                              f"Unix time of the {what}'s last success.", labels=[label]),
        }
        if prefix == "source":
            out["flagged"] = CounterMetricFamily("newsradar_source_items_flagged",
                                                 "Items kept but flagged with a problem, by problem.",
                                                 labels=[label, "problem"])
        else:
            out["dead_letters"] = CounterMetricFamily("newsradar_stage_dead_letters",
                                                      "Events a stage sent to the dead-letter topic.", labels=[label])
        return out
