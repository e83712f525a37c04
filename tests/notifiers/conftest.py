"""Fixtures shared by the notifier tests: a fresh state store, and a local port nobody listens on."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from newsradar.store import SqliteStore, StateStore, Store
from newsradar.store.postgres import PostgresStore

T = TypeVar("T")


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


def race(*calls: Callable[[], T]) -> list[T]:
    """Run the calls at once, one thread each (released together by a barrier); their results in order.
    An exception in any call fails the test."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(k: int) -> None:
        barrier.wait()
        try:
            results[k] = calls[k]()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return results
