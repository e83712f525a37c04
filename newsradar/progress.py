"""A one-line progress counter on stderr, shown only when stderr is a terminal (long polls, big classify files)."""

from __future__ import annotations

import sys
import threading
import time


class Progress:
    """``with Progress(total, "polling") as p: ... p.advance()`` — silent when not on a terminal."""

    def __init__(self, total: int | None, label: str, stream=None, min_interval: float = 0.2) -> None:
        self.total = total
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = 0
        self._lock = threading.Lock()
        self._last = 0.0
        self._min_interval = min_interval

    def advance(self, n: int = 1, note: str = "") -> None:
        with self._lock:
            self.done += n
            now = time.monotonic()
            if self.enabled and (now - self._last >= self._min_interval or self.done == self.total):
                self._last = now
                of = f"/{self.total}" if self.total else ""
                self.stream.write(f"\r{self.label}: {self.done}{of} {note[:40]:<40}")
                self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
