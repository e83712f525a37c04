"""A tiny raw-socket SMTP server for the failures aiosmtpd cannot stage: refusing connections, then coming up on
the same port; and hanging mid-DATA (the message sent, the final reply never coming).

The socket is bound at construction but not listening, so connections are refused until ``listen()``. It speaks
just enough SMTP for smtplib (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; no AUTH, no TLS). A message counts
as accepted only once the server has answered 250 to its DATA, as in real SMTP.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import Message


class RawSmtp:
    """``accepted`` holds each accepted message; ``transactions`` counts DATA commands, hung ones included."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.host, self.port = self._sock.getsockname()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._clients: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._hang = 0
        self.accepted: list[bytes] = []
        self.transactions = 0

    # -- controls -------------------------------------------------------------------------------------
    def listen(self) -> None:
        """Start accepting connections (until now they were refused)."""
        self._sock.listen(8)
        self._sock.settimeout(0.1)
        self._spawn(self._accept_loop)

    def hang_next(self, count: int) -> None:
        """The next ``count`` DATA transactions read the whole message, then never answer."""
        with self._lock:
            self._hang += count

    def messages(self) -> list[Message]:
        with self._lock:
            return [message_from_bytes(raw) for raw in self.accepted]

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._sock.close()
        for thread in self._threads:
            thread.join(timeout=5)

    # -- serving --------------------------------------------------------------------------------------
    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="raw-smtp")  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._clients.append(client)
            self._spawn(self._session, client)

    def _session(self, client: socket.socket) -> None:
        reader = client.makefile("rb")
        try:
            client.sendall(b"220 raw.test ESMTP ready\r\n")
            while not self._stop.is_set():
                line = reader.readline()
                if not line:
                    return
                verb = line.split(b" ", 1)[0].strip().upper()
                if verb == b"DATA":
                    if not self._data(client, reader):
                        return
                    continue
                reply = {b"EHLO": b"250 raw.test\r\n", b"HELO": b"250 raw.test\r\n", b"MAIL": b"250 ok\r\n",
                         b"RCPT": b"250 ok\r\n", b"RSET": b"250 ok\r\n", b"NOOP": b"250 ok\r\n",
                         b"QUIT": b"221 bye\r\n"}.get(verb, b"502 not implemented\r\n")
                client.sendall(reply)
                if verb == b"QUIT":
                    return
        except OSError:
            return
        finally:
            reader.close()
            client.close()

    def _data(self, client: socket.socket, reader: object) -> bool:
        """One DATA transaction; False when the session should end (hung, or the client went away)."""
        client.sendall(b"354 end with <CRLF>.<CRLF>\r\n")
        lines: list[bytes] = []
        while True:
            line = reader.readline()  # type: ignore[attr-defined]
            if not line:
                return False
            if line in (b".\r\n", b".\n"):
                break
            lines.append(line[1:] if line.startswith(b"..") else line)  # undo dot-stuffing
        with self._lock:
            self.transactions += 1
            hang = self._hang > 0
            self._hang -= 1 if hang else 0
            if not hang:
                self.accepted.append(b"".join(lines))
        if hang:
            self._stop.wait()  # the message is in, the 250 never comes
            return False
        client.sendall(b"250 queued\r\n")
        return True


@contextmanager
def raw_smtp() -> Iterator[RawSmtp]:
    server = RawSmtp()
    try:
        yield server
    finally:
        server.close()
