"""Liveness, readiness and the state store's share of /metrics.

/healthz answers as long as the process serves. /readyz asks the bus and the state store to answer and
checks that no notifier holds a permanent error (invalid_auth, an unwritable digest folder): 200 when all
hold, 503 otherwise, with a short JSON body naming which check failed (never the error text, which may
carry paths or addresses: that goes to the log, once per change).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from newsradar.errors import StateError, TransientError
from newsradar.metrics import Metrics
from newsradar.settings import Settings
from newsradar.source_health import FAILING, SILENT
from newsradar.store import StateStore

log = logging.getLogger(__name__)

NOTIFIER_COMPONENTS = ("notifier", "digest", "source-alerts")


class Readiness:
    """Runs the readiness checks; ``checks`` maps a name to a callable that raises when not ready."""

    def __init__(self, checks: dict[str, Callable[[], None]], metrics: Metrics) -> None:
        self.checks = checks
        self.metrics = metrics
        self._last: dict[str, str] = {}

    def __call__(self) -> tuple[bool, dict[str, Any]]:
        results: dict[str, str] = {}
        reasons: dict[str, str] = {}
        for name, check in self.checks.items():
            try:
                check()
                results[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - any failure means not ready
                results[name] = "error"
                reasons[name] = f"{type(exc).__name__}: {exc}"
        snapshot = self.metrics.snapshot()["components"]
        for name in NOTIFIER_COMPONENTS:
            permanent = (snapshot.get(name) or {}).get("permanent_error")
            if name in snapshot:
                results[name] = "error" if permanent else "ok"
                if permanent:
                    reasons[name] = permanent
        self._log_changes(results, reasons)
        ready = all(v == "ok" for v in results.values())
        return ready, {"status": "ready" if ready else "not ready", "checks": results}

    def _log_changes(self, results: dict[str, str], reasons: dict[str, str]) -> None:
        for name, state in results.items():
            if self._last.get(name, "ok") != state:
                if state == "ok":
                    log.info("readiness: %s answers again", name)
                else:
                    log.warning("readiness: %s is not ready: %s", name, reasons.get(name, "?")[:300])
        self._last = dict(results)


class StateExposition(Collector):
    """Gauges read from the state store at scrape time: outbox, consecutive failures, broken sources."""

    def __init__(self, store: StateStore, settings: Settings) -> None:
        self.store = store
        self.sources = [s.name for s in settings.sources if s.enabled]

    def collect(self) -> Iterator[Metric]:
        try:
            pending = self.store.outbox_pending()
            statuses = self.store.source_statuses()
        except (StateError, TransientError) as exc:
            log.warning("metrics: state store not readable: %s", exc)
            return
        outbox = GaugeMetricFamily("newsradar_outbox_pending", "Effects begun but not known delivered, by kind "
                                   "(story alerts, digests, source alerts).", labels=["kind"])
        for kind, n in sorted(pending.items()):
            outbox.add_metric([kind], n)
        yield outbox
        failures = GaugeMetricFamily("newsradar_source_consecutive_failures", "Failed polls in a row.",
                                     labels=["source"])
        last_item = GaugeMetricFamily("newsradar_source_last_item_timestamp_seconds",
                                      "Unix time a poll of the source last published a new item.", labels=["source"])
        broken = 0
        for name in self.sources:
            status = statuses.get(name)
            failures.add_metric([name], status.failures if status else 0)
            if status is not None and status.last_item_at is not None:
                last_item.add_metric([name], status.last_item_at.timestamp())
            broken += bool(status and status.status in (FAILING, SILENT))
        yield failures
        yield last_item
        yield GaugeMetricFamily("newsradar_sources_broken", "Enabled sources failing or silent.", value=broken)
