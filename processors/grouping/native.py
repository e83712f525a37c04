"""The switch for grouping's compiled core (processors/grouping/_core.c, built by `make setup`).

The core computes exactly what its pure-Python twins compute, only faster, and only where a profile
showed the need: shingle hashing (a loop per character) and the postings of the index (lookups and
merges among millions of entries). The Python functions stay the reference; the tests run both and
compare them. ``NEWSRADAR_GROUPING_NATIVE=0`` switches the core off for a process; tests flip
``enabled`` to run both paths in one process.
"""

from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType

import numpy as np

log = logging.getLogger(__name__)

# What the core's result bytes are read as (np.frombuffer): dtype objects, not types, which it reads twice as fast.
U16, U32, F64 = np.dtype(np.uint16), np.dtype(np.uint32), np.dtype(np.float64)

core: ModuleType | None
try:
    core = importlib.import_module("processors.grouping._core")
except ImportError:  # pragma: no cover - a source tree never built with `make setup` (pip install -e .)
    core = None
    log.warning("grouping: compiled core processors.grouping._core not built; using the pure-Python path")

enabled = core is not None and os.environ.get("NEWSRADAR_GROUPING_NATIVE", "1") != "0"


def active() -> ModuleType | None:
    """The compiled core when it is built and switched on, else None (use the Python path)."""
    return core if enabled else None


def release_memory() -> None:
    """Give the heap pages freed by a merge or compaction back to the OS (glibc only; else nothing).

    Part of no decision, so it runs whenever the core is built, switched on or not.
    """
    if core is not None:
        core.release_memory()
