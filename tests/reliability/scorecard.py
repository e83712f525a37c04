"""The reliability scorecard: each case records what it expected, what it saw, and the items lost and alerts doubled
it counted from the stand-ins; bench/reliability.py runs the suite and prints the table.

Rows are collected per test and written as JSON at the end of the session when $NEWSRADAR_SCORECARD names a
file. A test records its row *before* its assertions, so a failing case still shows what it observed.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

ENV = "NEWSRADAR_SCORECARD"


@dataclass
class Row:
    """One case of the scorecard; ``test`` is the pytest node id, ``outcome`` filled in from the test report."""

    case: str
    expected: str
    observed: str
    lost: int
    doubled: int
    test: str = ""
    outcome: str = "not run"


class Registry:
    """Rows and outcomes of the whole session (tests may run in threads of their own; keep it locked)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rows: list[Row] = []
        self.outcomes: dict[str, str] = {}

    def add(self, row: Row) -> None:
        with self._lock:
            self.rows.append(row)

    def outcome(self, nodeid: str, outcome: str) -> None:
        """Worst outcome wins: a failure in setup, call or teardown makes the test failed."""
        with self._lock:
            if self.outcomes.get(nodeid) != "failed":
                self.outcomes[nodeid] = outcome

    def write(self, path: Path) -> None:
        with self._lock:
            for row in self.rows:
                row.outcome = self.outcomes.get(row.test, "not run")
            data = {
                "rows": [asdict(r) for r in self.rows],
                "tests": dict(sorted(self.outcomes.items())),
            }
        path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")


REGISTRY = Registry()


class Card:
    """What a test hands to the ``scorecard`` fixture: ``record`` one or more rows."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.rows: list[Row] = []

    def record(self, case: str, expected: str, observed: str, *, lost: int, doubled: int) -> None:
        row = Row(case, expected, observed, int(lost), int(doubled), self.nodeid)
        self.rows.append(row)
        REGISTRY.add(row)


def destination() -> Path | None:
    value = os.environ.get(ENV, "")
    return Path(value) if value else None
