"""Commits that need not wait for the disk, on the SQLite files (the embedded bus and the state store).

Both files run in WAL mode with synchronous=FULL: a commit returns once the log is on disk. A few writes
describe only live processes on this host (heartbeats, partition and alert leases), which a power loss
ends too, or are made durable later before anything depends on them ('sent' alert records, synced at the
end of a notifier's flush). Those commit with synchronous=NORMAL: every process sees them at once and
they survive any process crash, just not a power loss. The next FULL commit syncs the log up to itself,
relaxed commits included (the log is written in order), so writes are never reordered on disk.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def without_fsync(conn: sqlite3.Connection) -> Iterator[None]:
    """The commits made on ``conn`` inside the block do not wait for the disk (see the module docstring).

    Enter it outside any transaction of ``conn``: SQLite ignores the pragma inside one.
    """
    conn.execute("PRAGMA synchronous=NORMAL")
    try:
        yield
    finally:
        conn.execute("PRAGMA synchronous=FULL")
