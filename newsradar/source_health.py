"""Source health: when a source counts as failing or silent, and the one alert (and one recovery) per incident.

A source is **failing** once ``source_health.failures`` polls in a row have failed, and **silent** once it
has published no new item for longer than its expected period (``sources[].expected_period``, else
``source_health.silent_after``) while its polls succeed. Either opens an *incident*: one alert is queued.
The incident closes — one recovery message — when a poll succeeds and the source is no longer silent
(for a silent source: a new item arrives). Failing and silent inside one incident are one incident.

The decision and the queued alert are written together (``Store.save_source_status``: compare-and-set on a
version, plus the poll record, plus the alert with an id naming the incident) so a restart or a second
writer (the silence check racing a poll) can neither lose nor double an alert. Sending is the notifier's
job (``notifiers/source_alerts.py``), from the queue, with its own idempotency.

    poll outcome ──▶ after_poll ─┐
    clock        ──▶ after_check ┴──▶ (new status, alert or None) ──▶ store (one transaction) ──▶ sender
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from newsradar.errors import StateError, TransientError
from newsradar.settings import Settings
from newsradar.store import SourceAlert, SourcePoll, SourceStatus, StateStore

log = logging.getLogger(__name__)

HEALTHY, FAILING, SILENT, DISABLED = "healthy", "failing", "silent", "disabled"
ERROR_CHARS = 500  # an error message is kept for the dashboard and the alert, not a whole page


def fresh(source: str, at: datetime) -> SourceStatus:
    """The status of a source seen for the first time: healthy, watched from ``at``."""
    return SourceStatus(source, HEALTHY, 0, None, None, None, None, None, at, None, 0)


def is_silent(status: SourceStatus, now: datetime, period: float) -> bool:
    """No new item for longer than ``period`` seconds (counted from when we started watching, if never)."""
    reference = status.last_item_at or status.tracked_since
    return (now - reference).total_seconds() > period


def _alert(status: SourceStatus, kind: str, at: datetime, since: datetime) -> SourceAlert:
    detail = (status.last_error or "")[:ERROR_CHARS] if kind == FAILING else ""
    return SourceAlert(f"{status.source}|{kind}|{since.timestamp():.6f}", status.source, kind, detail,
                       status.failures, since, status.last_item_at, at)


def after_poll(
    status: SourceStatus, at: datetime, new_items: int, error: str | None, *, failures: int, period: float
) -> tuple[SourceStatus, SourceAlert | None]:
    """The status after one poll, and the alert it opens or closes an incident with (None: no message)."""
    status = replace(status, last_poll_at=at)
    if error is not None:
        status = replace(status, failures=status.failures + 1, failing_since=status.failing_since or at,
                         last_error=error[:ERROR_CHARS])
        if status.failures < failures or status.status == FAILING:
            return status, None
        if status.incident_since is not None:  # silent, now failing too: the same incident, no second alert
            return replace(status, status=FAILING), None
        since = status.failing_since or at
        opened = replace(status, status=FAILING, incident_since=since)
        return opened, _alert(opened, FAILING, at, since)
    status = replace(status, failures=0, failing_since=None, last_success_at=at,
                     last_item_at=at if new_items else status.last_item_at)
    silent = is_silent(status, at, period)
    if status.incident_since is not None:
        if silent:
            return replace(status, status=SILENT), None
        closed = replace(status, status=HEALTHY, incident_since=None)
        return closed, _alert(status, "recovered", at, status.incident_since)
    if silent:
        opened = replace(status, status=SILENT, incident_since=at)
        return opened, _alert(opened, SILENT, at, at)
    return replace(status, status=HEALTHY), None


def after_check(status: SourceStatus, now: datetime, *, period: float) -> tuple[SourceStatus, SourceAlert] | None:
    """The clock's view between polls: a healthy source that has gone silent opens an incident."""
    if status.status != HEALTHY or status.incident_since is not None or not is_silent(status, now, period):
        return None
    opened = replace(status, status=SILENT, incident_since=now)
    return opened, _alert(opened, SILENT, now, now)


class SourceHealth:
    """Applies poll outcomes and the clock to the stored status of each source (collector role)."""

    def __init__(self, settings: Settings, store: StateStore) -> None:
        self.store = store
        self.failures = settings.source_health.failures
        self.periods = {s.name: s.expected_period or settings.source_health.silent_after for s in settings.sources}
        self.default_period = settings.source_health.silent_after

    def period(self, source: str) -> float:
        """Seconds without a new item after which ``source`` is silent."""
        return self.periods.get(source, self.default_period)

    def record_poll(self, source: str, at: datetime, new_items: int, error: str | None) -> SourceAlert | None:
        """Store one poll's outcome and the transition it causes; returns the alert queued, if any."""
        poll = SourcePoll(at, new_items, error)
        while True:
            stored = self.store.source_status(source)
            status, alert = after_poll(stored or fresh(source, at), at, new_items, error,
                                       failures=self.failures, period=self.period(source))
            if self.store.save_source_status(status, stored.version if stored else 0, poll=poll, alert=alert):
                break
        if alert is not None:
            log.warning("source %s: %s (queued one ops alert)", source, _describe(alert))
        return alert

    def check(self, sources: Iterable[str], now: datetime) -> list[SourceAlert]:
        """Open a 'silent' incident for every source in ``sources`` that has gone quiet; returns the alerts queued.

        A source never polled yet has no status and is left alone (its first poll starts the clock).
        """
        queued: list[SourceAlert] = []
        for source in sources:
            try:
                alert = self._check_one(source, now)
            except (StateError, TransientError) as exc:
                log.error("source %s: cannot store its health check: %s", source, exc)
                continue
            if alert is not None:
                log.warning("source %s: %s (queued one ops alert)", source, _describe(alert))
                queued.append(alert)
        return queued

    def _check_one(self, source: str, now: datetime) -> SourceAlert | None:
        while True:
            stored = self.store.source_status(source)
            if stored is None:
                return None
            decided = after_check(stored, now, period=self.period(source))
            if decided is None:
                return None
            status, alert = decided
            if self.store.save_source_status(status, stored.version, alert=alert):
                return alert


def _describe(alert: SourceAlert) -> str:
    if alert.kind == FAILING:
        return f"failing ({alert.failures} polls in a row; last error: {alert.detail})"
    if alert.kind == SILENT:
        return "silent (no new item for longer than its expected period)"
    return "recovered"
