"""Opening the SQLite files (the embedded bus, the state store) when several processes open one at once.

Both files run in WAL mode with synchronous=FULL (see sqlite_sync.py) and create their tables on first use.
Processes starting together on a fresh file (a daemon and its processor process, roles started by one
systemd target) race to switch it to WAL and create the tables; SQLite answers the loser "database is locked"
at once, without calling its busy handler (the lock is being upgraded). ``connect`` tries again, a few tens of
milliseconds apart, for up to ``patience`` seconds before it lets the error through.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

BUSY_MS = 30_000  # how long a statement waits for another connection's lock, once the file is open


def connect(path: Path, schema: str = "", patience: float = 30.0) -> sqlite3.Connection:
    """A connection to ``path`` in autocommit mode, usable from any thread, with WAL, synchronous=FULL and
    ``schema`` (statements that create what is missing) in place; raises sqlite3.Error (or OSError) as SQLite
    does, "database is locked" only once ``patience`` is spent."""
    deadline = time.monotonic() + patience
    while True:
        conn = sqlite3.connect(str(path), timeout=BUSY_MS / 1000, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # a commit returns only once the log is on disk
            if schema:
                conn.executescript(schema)
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.01, 0.1))
        except BaseException:
            conn.close()
            raise
