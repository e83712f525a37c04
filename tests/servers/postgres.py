"""A real PostgreSQL server for the tests, started by deploy/postgres's own scripts.

Session-scoped and lazy: the server starts only when a test asks for ``postgres_server`` (the Debian server
binaries are installed by deploy/postgres/ensure.sh when missing). Each test that wants a store gets a
database of its own (``postgres_dsn``), so tests never see each other's rows. Never skips: a server that
does not come up is an error with the server log, because a store that was not tested does not work.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.servers.kafka import _free_ports

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "postgres"
TIMEOUT = 600  # the first run may install the server package from Debian


def _run(args: list[str], what: str) -> str:
    env = dict(os.environ, PG_WATCH_PID=str(os.getpid()))
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{what}: {' '.join(args)} did not finish within {TIMEOUT}s") from exc
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


@dataclass
class PostgresServer:
    """One PostgreSQL server on 127.0.0.1, on a data directory of its own."""

    data_dir: Path
    port: int

    @property
    def dsn(self) -> str:
        """The server's own database ("newsradar")."""
        return f"postgresql://newsradar@127.0.0.1:{self.port}/newsradar"

    def start(self) -> None:
        _run([str(DEPLOY / "start.sh"), str(self.data_dir), str(self.port)], f"starting PostgreSQL on {self.port}")

    def stop(self, kill: bool = False) -> None:
        """Stop it (``kill``: an immediate shutdown, as a crash); the data stays for another start."""
        _run([str(DEPLOY / "stop.sh"), *(["--kill"] if kill else []), str(self.data_dir)], "stopping PostgreSQL")

    def new_database(self, prefix: str = "test") -> str:
        """A fresh, empty database on the server; returns its DSN."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://newsradar@127.0.0.1:{self.port}/{name}"

    def log_tail(self, chars: int = 4000) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace")[-chars:] if path.is_file() else "(no server log)"


def start_server(data_dir: Path) -> PostgresServer:
    """Start a server on a free port (a second port if another process takes the first meanwhile)."""
    for attempt in (1, 2):
        server = PostgresServer(data_dir, _free_ports(1)[0])
        try:
            server.start()
            return server
        except RuntimeError as exc:
            if attempt == 2:
                raise RuntimeError(f"{exc}\nserver log:\n{server.log_tail()}") from exc
    raise AssertionError("unreachable")


@contextmanager
def running_server() -> Iterator[PostgresServer]:
    """A server on a fresh data directory, stopped and removed afterwards. The directory is outside pytest's
    temporary tree: pytest makes that tree private to root again whenever a session starts, and the server
    runs as the postgres user."""
    base = Path(tempfile.mkdtemp(prefix="newsradar-pg-"))
    try:
        server = start_server(base / "data")
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A running server for the whole session."""
    with running_server() as server:
        yield server


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> str:
    """The DSN of a database of this test's own."""
    return postgres_server.new_database()
