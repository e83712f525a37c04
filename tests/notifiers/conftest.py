"""Fixtures shared by the notifier tests: a fresh state store, and a local port nobody listens on."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsradar.store import Store


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
