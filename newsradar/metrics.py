"""Counters and health: every component counts received / emitted / dropped (by reason) / errors.

A component is healthy while it has succeeded recently: a source is unhealthy
once it has been silent (no successful poll) for more than twice its interval,
and any component with a permanent failure (bad Slack token, unknown channel)
is unhealthy until it succeeds again. The daemon writes a snapshot to
``{state_dir}/health.json`` so operators and probes can read it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ComponentMetrics:
    """The counts and last success of one component (a source, a stage, a notifier)."""

    name: str
    interval: float | None = None
    counts: Counter[str] = field(default_factory=Counter)
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

    def error(self, name: str, message: str, permanent: bool = False) -> None:
        comp = self.component(name)
        with self._lock:
            comp.counts["errors"] += 1
            comp.last_error = message
            if permanent:
                comp.permanent_error = message

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
