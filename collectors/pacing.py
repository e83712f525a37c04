"""Adaptive polling: each source's interval follows how often it really publishes (``polling.adaptive``).

After every poll the source's publishing rate is re-estimated as an exponential average of
``new items / seconds since the previous poll`` (weight ``ALPHA`` for the newest observation), and the next
interval is the time one new item takes at that rate, bounded by ``polling.min_interval`` and
``polling.max_interval`` (a source that publishes nothing drifts to the maximum; one that publishes every few
minutes to the minimum). Naver sources never go below their budget-paced interval.

A poll that fails because the answer cannot be parsed (ContentError: not a feed, hostile XML) counts as a
parse failure; after ``polling.parse_failures`` in a row the source is polled only every
``polling.failing_interval`` seconds until a poll works again, and health shows it (the source component's
``info``: ``interval``, ``parse_failures``, ``backed_off``). Other failures (timeouts, HTTP errors) leave the
interval alone: the runner's own backoff handles those. The state lives in the state store
(``poll_state``), so a restarted daemon resumes where it was.
"""

from __future__ import annotations

from datetime import datetime

from collectors.naver import budget_interval, scheduled_interval
from newsradar.settings import Settings, SourceSettings
from newsradar.store import PollState, StateStore

ALPHA = 0.3


class Pacer:
    """Computes and records each source's next interval from what its polls found."""

    def __init__(self, settings: Settings, store: StateStore) -> None:
        self._settings = settings
        self._store = store
        self._sources = {s.name: s for s in settings.sources}

    def _bounds(self, source: SourceSettings) -> tuple[float, float]:
        polling = self._settings.polling
        floor = max(polling.min_interval, budget_interval(self._settings) if source.kind == "naver" else 0)
        return floor, max(floor, polling.max_interval)

    def interval(self, name: str) -> float:
        """The interval to schedule ``name`` with now: the saved one (a restart resumes), else its configured one
        (or its budget-paced one for naver sources)."""
        source = self._sources[name]
        state = self._store.poll_state(name)
        if state is None:
            return scheduled_interval(self._settings, source)
        return state.interval

    def after_poll(self, name: str, new_items: int, parse_failed: bool, now: datetime) -> PollState:
        """Record one poll of ``name`` (``new_items`` published; ``parse_failed``: the answer could not be
        parsed) and return its new state, whose ``interval`` is the next one to schedule."""
        source = self._sources[name]
        polling = self._settings.polling
        low, high = self._bounds(source)
        old = self._store.poll_state(name) or PollState(scheduled_interval(self._settings, source))
        at = now.timestamp()
        if parse_failed:
            failures = old.failures + 1
            interval = polling.failing_interval if failures >= polling.parse_failures else old.interval
            state = PollState(interval, old.rate, failures, at)
        else:
            rate = old.rate
            if old.last_poll_at is not None and at > old.last_poll_at:
                observed = new_items / (at - old.last_poll_at)
                rate = observed if rate is None else ALPHA * observed + (1 - ALPHA) * rate
            if rate is None:  # the first poll: nothing to measure against yet
                interval = min(max(old.interval if old.failures < polling.parse_failures else
                                   scheduled_interval(self._settings, source), low), high)  # fmt: skip
            else:
                interval = min(max(1 / rate if rate > 0 else high, low), high)
            state = PollState(interval, rate, 0, at)
        self._store.save_poll_state(name, state)
        return state

    def health(self, state: PollState) -> dict[str, object]:
        """What health shows for a source's pacing."""
        backed_off = state.failures >= self._settings.polling.parse_failures
        return {"interval": round(state.interval, 1), "parse_failures": state.failures, "backed_off": backed_off,
                "items_per_hour": None if state.rate is None else round(state.rate * 3600, 2)}  # fmt: skip
