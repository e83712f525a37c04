"""The switch for grouping's compiled core (processors/_dedup_core.c, built by `make setup`).

The core computes exactly what the pure-Python functions compute, only faster; the Python ones stay
the reference (tests/processors/test_dedup_native.py compares both). ``NEWSRADAR_GROUPING_NATIVE=0``
switches the core off for a process; tests flip ``enabled`` to run both paths in one process.
"""

from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType

log = logging.getLogger(__name__)

core: ModuleType | None
try:
    core = importlib.import_module("processors._dedup_core")
except ImportError:  # pragma: no cover - a source tree never built with `make setup` (pip install -e .)
    core = None
    log.warning("grouping: compiled core processors._dedup_core not built; using the pure-Python path")

enabled = core is not None and os.environ.get("NEWSRADAR_GROUPING_NATIVE", "1") != "0"


def active() -> ModuleType | None:
    """The compiled core when it is built and switched on, else None (use the Python path)."""
    return core if enabled else None


def release_memory() -> None:
    """Return the heap pages freed by a merge or compaction to the OS (glibc only; a no-op elsewhere).

    Not part of any decision, so it runs whenever the core is built, switched on or not.
    """
    if core is not None:
        core.release_memory()
