#!/usr/bin/env python3
"""Is the broker at HOST:PORT serving? Sends one Kafka Metadata request (v4) and checks the answer.

start.sh runs this until it succeeds: an open port is not enough, the broker must have joined its
own metadata quorum and list itself. Standard library only, so it runs before any venv exists.
Exit status: 0 ready (prints the brokers), 1 not ready yet (prints why).
"""

from __future__ import annotations

import socket
import struct
import sys

METADATA_API_KEY = 3
METADATA_VERSION = 4  # the oldest version Kafka 4.x still accepts (KIP-896), and not yet "flexible"


def _request(correlation_id: int) -> bytes:
    client_id = b"newsradar-probe"
    header = (
        struct.pack(">hhih", METADATA_API_KEY, METADATA_VERSION, correlation_id, len(client_id)) + client_id
    )
    body = struct.pack(">ib", -1, 0)  # topics = null (all), allow_auto_topic_creation = false
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = b""
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection mid-response")
        chunks += chunk
    return chunks


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return int(value)

    def string(self) -> str | None:
        length = self.take(">h")
        if length < 0:
            return None
        value = self.data[self.pos : self.pos + length].decode("utf-8")
        self.pos += length
        return value


def probe(host: str, port: int, timeout: float = 3.0) -> list[tuple[int, str, int]]:
    """The (node_id, host, port) of every broker the cluster reports; raises OSError/ValueError if not ready."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(_request(correlation_id=7))
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        reader = _Reader(_recv_exact(sock, size))
    if reader.take(">i") != 7:
        raise ValueError("response does not answer our request (correlation id differs)")
    reader.take(">i")  # throttle_time_ms
    brokers = []
    for _ in range(reader.take(">i")):
        node_id = reader.take(">i")
        broker_host = reader.string() or ""
        broker_port = reader.take(">i")
        reader.string()  # rack
        brokers.append((node_id, broker_host, broker_port))
    if not brokers:
        raise ValueError("broker answers but lists no brokers yet (still joining the metadata quorum)")
    return brokers


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: probe.py HOST PORT", file=sys.stderr)
        return 2
    host, port = argv[0], int(argv[1])
    try:
        brokers = probe(host, port)
    except (OSError, ValueError, struct.error) as exc:
        print(f"kafka at {host}:{port} not ready: {exc}")
        return 1
    print(f"kafka at {host}:{port} ready: " + ", ".join(f"node {n} at {h}:{p}" for n, h, p in brokers))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
