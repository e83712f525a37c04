"""The state store: one contract (``base.StateStore``), two implementations.

``open_store(settings)`` gives the configured one: SQLite in ``{state_dir}/state.db`` (the embedded
default, and roles sharing one host) or PostgreSQL (roles on several hosts; the DSN comes from the
environment variable ``state.dsn_env`` names, never from the YAML).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from newsradar.store.base import (
    GroupingDecision,
    GroupingRow,
    PollState,
    SourceAlert,
    SourcePoll,
    SourceStatus,
    StateStore,
    StoryCopy,
    StoryWrite,
)
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


def open_reader(settings: Settings) -> StateStore:
    """A handle for readers that must never write (the dashboard, issue 17), opened after ``open_store``.

    SQLite: a read-only connection of its own (mode=ro, query_only), so a write through it fails and a
    slow page never holds the pipeline's lock. PostgreSQL: a small pool of its own whose connections are
    only ever used for reads (the dashboard calls no write method).
    """
    if settings.state.kind == "postgres":
        from newsradar.store.postgres import PostgresStore

        return PostgresStore.from_settings(settings.state.model_copy(update={"pool_size": 2}))
    return SqliteStore.open_readonly(Path(settings.state_dir) / "state.db")


__all__ = [
    "GroupingDecision", "GroupingRow", "PollState", "SourceAlert", "SourcePoll", "SourceStatus", "SqliteStore",
    "StateStore", "Store", "StoryCopy", "StoryWrite", "open_reader", "open_store",
]
