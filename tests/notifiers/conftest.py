"""Fixtures shared by the notifier tests: a fresh state store, and a local port nobody listens on."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsradar.store import SqliteStore, StateStore, Store
from newsradar.store.postgres import PostgresStore
from tests.concurrency import race  # noqa: F401 - the notifier tests import it from here


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    state = Store(tmp_path / "state.db")
    yield state
    state.close()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A 127.0.0.1 port that is bound (so nobody else gets it) but not listening: connections are refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture(params=["sqlite", "postgres"])
def two_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[StateStore, StateStore]]:
    """Two store objects on one state (two connections): two notifiers on one host (SQLite) or on two
    hosts sharing a real PostgreSQL."""
    if request.param == "sqlite":
        pair: tuple[StateStore, StateStore] = (SqliteStore(tmp_path / "s.db"), SqliteStore(tmp_path / "s.db"))
    else:
        dsn = request.getfixturevalue("postgres_dsn")
        pair = (PostgresStore(dsn, pool_size=2), PostgresStore(dsn, pool_size=2))
    yield pair
    for one in pair:
        one.close()
