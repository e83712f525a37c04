"""A real Apache Kafka broker for the tests, started by deploy/kafka's own scripts.

Session-scoped and lazy: the broker starts only when a test asks for ``kafka_broker``. It never
skips: if the jars cannot be fetched or the broker does not come up, the test errors with the
broker log tail, because a bus that was not tested is a bus that does not work.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kafka"
FETCH_TIMEOUT = 900  # the first run downloads ~45 MB of jars through Maven
START_TIMEOUT = 150  # start.sh gives up by itself after 60 s; this only guards against a hang


def _free_ports(count: int) -> list[int]:
    """Ports the kernel hands out for port 0; all held open together so they differ."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _run(args: list[str], timeout: float, what: str) -> None:
    env = dict(os.environ, PYTHON=sys.executable, KAFKA_WATCH_PID=str(os.getpid()))
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{what}: {' '.join(args)} did not finish within {timeout}s") from exc
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")


@dataclass
class KafkaBroker:
    """One single-node KRaft broker on 127.0.0.1, on a data dir of its own."""

    data_dir: Path
    port: int
    controller_port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (or start again, on the same data and ports) and wait until it serves metadata."""
        args = [str(DEPLOY / "start.sh"), str(self.data_dir), str(self.port), str(self.controller_port)]
        _run(args, START_TIMEOUT, f"starting the Kafka broker on {self.bootstrap}")

    def stop(self, keep: bool = True, kill: bool = False) -> None:
        """Stop it; ``kill`` is SIGKILL (a crash), ``keep`` keeps the data for another start."""
        flags = (["--keep"] if keep else []) + (["--kill"] if kill else [])
        _run(
            [str(DEPLOY / "stop.sh"), *flags, str(self.data_dir)], START_TIMEOUT, "stopping the Kafka broker"
        )

    def restart(self, hard: bool = False) -> None:
        """Stop (SIGKILL if ``hard``) and start the same broker on the same data and ports."""
        self.stop(keep=True, kill=hard)
        self.start()


def ensure_jars() -> None:
    """Fetch the broker jars unless deploy/kafka/lib holds them already."""
    if not (DEPLOY / "lib" / ".pom.sha256").is_file():
        _run([str(DEPLOY / "fetch.sh")], FETCH_TIMEOUT, "fetching the Kafka jars (deploy/kafka/fetch.sh)")


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A running broker for the whole session; ``.bootstrap`` is "127.0.0.1:PORT"."""
    ensure_jars()
    for attempt in (1, 2):
        port, controller_port = _free_ports(2)
        broker = KafkaBroker(tmp_path_factory.mktemp("kafka") / "broker", port, controller_port)
        try:
            broker.start()
            break
        except RuntimeError as exc:
            # Another process may take a free port between our probe and the broker's bind: try new ones once.
            if attempt == 2 or "Address already in use" not in str(exc):
                raise
    try:
        yield broker
    finally:
        broker.stop(keep=False)
