"""The dashboard inside the daemon: uvicorn serving newsradar.web.app on a thread of its own.

The daemon builds a ``Dashboard`` once from settings (checking the token rule before anything binds),
calls ``start()`` — which binds the socket synchronously, so a taken port is a clear error at once and
port 0 gives a real address to print — and ``stop()`` at shutdown. Pages read the store through their
own handle, which never writes (``store.open_reader``).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

import uvicorn

from newsradar.errors import ConfigError
from newsradar.metrics import Metrics
from newsradar.settings import Settings
from newsradar.store import open_reader
from newsradar.web.app import create_app
from newsradar.web.auth import Gate
from newsradar.web.pages import NextPoll, Pages
from newsradar.web.probes import Readiness, StateExposition

log = logging.getLogger(__name__)


class Dashboard:
    """One web server: the dashboard pages, /metrics, /healthz and /readyz."""

    def __init__(self, settings: Settings, metrics: Metrics, checks: dict[str, Callable[[], None]],
                 next_poll: NextPoll | None = None) -> None:
        self.settings = settings
        self.gate = Gate(settings.web)  # raises ConfigError off loopback without a token, before anything binds
        self.reader = open_reader(settings)  # never written through (read-only SQLite; reads only on PostgreSQL)
        metrics.registry.register(StateExposition(self.reader, settings))
        self.app = create_app(Pages(settings, self.reader, next_poll), self.gate, Readiness(checks, metrics),
                              metrics.registry)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.address = ""

    def start(self) -> str:
        """Bind ``web.listen`` and serve on a thread; returns the base URL. Raises ConfigError if it cannot bind."""
        web = self.settings.web
        family = socket.AF_INET6 if ":" in web.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((web.host, web.port))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"web.listen {web.listen}: cannot listen there: {exc.strerror or exc}") from None
        sock.listen(128)
        host, port = sock.getsockname()[:2]
        shown = "127.0.0.1" if host == "0.0.0.0" else ("[::1]" if host == "::" else (f"[{host}]" if ":" in host
                                                                                    else host))
        self.address = f"http://{shown}:{port}/"
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="off",
                                server_header=False, timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, name="dashboard",
                                        daemon=True)
        self._thread.start()
        return self.address

    def stop(self) -> None:
        """Stop serving (in-flight requests get a few seconds) and close the read-only store handle."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.reader.close()
