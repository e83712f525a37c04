"""The state store: one contract (``base.StateStore``), two implementations.

``open_store(settings)`` gives the configured one: SQLite in ``{state_dir}/state.db`` (the embedded
default, and roles sharing one host) or PostgreSQL (roles on several hosts; the DSN comes from the
environment variable ``state.dsn_env`` names, never from the YAML).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from newsradar.store.base import GroupingDecision, GroupingRow, StateStore, StoryWrite
from newsradar.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from newsradar.settings import Settings

Store = SqliteStore  # the name the tools and tests have always opened a SQLite store by


def open_store(settings: Settings) -> StateStore:
    """The state store the settings ask for (PostgreSQL is imported only when asked for)."""
    if settings.state.kind == "postgres":
        from newsradar.store.postgres import PostgresStore

        return PostgresStore.from_settings(settings.state)
    return SqliteStore(Path(settings.state_dir) / "state.db")


__all__ = ["GroupingDecision", "GroupingRow", "SqliteStore", "StateStore", "Store", "StoryWrite", "open_store"]
