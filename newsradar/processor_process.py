"""The processor stages in a process of their own beside the daemon (``processor.own_process``).

One Python process runs on one core at a time. On the real June stream the embedded daemon (role ``all``)
spends its time about evenly between the sweep and alerts on one side (feedparser, HTTP, Slack calls) and
extraction, matching and grouping on the other, so those two halves in two processes use two cores. The
child process is the ``processor`` role exactly as on another host: its own bus consumers, its own state-store
connections, the same bus and store (the embedded bus is a SQLite file several processes share, as its
consumer groups were built for). Nothing passes between the two processes but the bus, the store and this
module's reports:

- the daemon says when its sweep is done (``swept``); the child then drains what is left and says so
  (``drained``), so ``run --once`` and the daemon's first sweep end only once every item went through every
  stage, as they do in one process;
- the child sends what it counted (the stages' counters and timings) every ``REPORT_EVERY`` seconds and when
  it ends; the daemon adds it to its own metrics, so health, /metrics and ``run --once``'s summary show the
  stages as before.

Nothing can be lost or doubled by the split: each stage commits its offsets only after its effects are durable,
wherever it runs. A child that dies is restarted by the daemon (its uncommitted batch is redelivered to the new
one); a child whose daemon died ends itself. The first child is forked before the daemon starts any thread
(``start_early``: it inherits the modules imported so far); a restarted one is spawned, as the daemon then runs
threads.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

from newsradar.errors import NewsradarError
from newsradar.metrics import ComponentDelta, Metrics, merge_metrics
from newsradar.settings import Settings

log = logging.getLogger(__name__)

REPORT_EVERY = 2.0  # seconds between two reports of the child's counts (health and /metrics lag this much)
RESTART_AFTER = 1.0  # seconds before a child that died is started again (doubling, up to RESTART_CAP, while
RESTART_CAP = 60.0  # children keep dying within STEADY_AFTER seconds of their start)
STEADY_AFTER = 300.0
COMPONENT = "processor-process"  # health's entry for the child itself


class ReportingMetrics(Metrics):
    """The child's metrics: counts as usual, and keeps what changed since the last report for the daemon."""

    def __init__(self) -> None:
        super().__init__()
        self._observed: list[tuple[str, str, float]] = []  # (kind, stage, seconds) since the last report
        self._reporting = threading.Lock()  # stage threads observe; the reports thread and the run's end take
        self._reported: dict[str, tuple[Counter[str], Counter[str]]] = {}  # counts, error kinds last sent
        self._last_take = 0.0

    def observe_batch(self, stage: str, seconds: float) -> None:
        super().observe_batch(stage, seconds)
        self._observe("batch", stage, seconds)

    def observe_process(self, stage: str, seconds: float) -> None:
        super().observe_process(stage, seconds)
        self._observe("process", stage, seconds)

    def observe_lag(self, seconds: float) -> None:
        super().observe_lag(seconds)
        self._observe("lag", "", seconds)

    def _observe(self, kind: str, stage: str, seconds: float) -> None:
        with self._reporting:
            self._observed.append((kind, stage, seconds))

    def take(self) -> tuple[dict[str, ComponentDelta], list[tuple[str, str, float]]]:
        """What was counted and timed since the last ``take`` (every component the first time, counted or not)."""
        with self._reporting:
            observed, self._observed = self._observed, []
            now, since = time.time(), self._last_take
            deltas: dict[str, ComponentDelta] = {}
            for comp in self.components():
                counts, kinds = self._reported.get(comp.name, (Counter(), Counter()))
                new_counts, new_kinds = comp.counts - counts, comp.error_kinds - kinds
                succeeded = comp.last_success_at is not None and comp.last_success_at > since
                if new_counts or new_kinds or succeeded or comp.info or comp.name not in self._reported:
                    deltas[comp.name] = ComponentDelta(new_counts, new_kinds, comp.last_error, succeeded,
                                                       dict(comp.info))  # fmt: skip
                self._reported[comp.name] = (comp.counts, comp.error_kinds)
            self._last_take = now
            return deltas, observed


def add_report(metrics: Metrics, deltas: dict[str, ComponentDelta], observed: list[tuple[str, str, float]]) -> None:
    """Add one report of the child to the daemon's ``metrics``."""
    merge_metrics(metrics, deltas)
    for kind, stage, seconds in observed:
        if kind == "batch":
            metrics.observe_batch(stage, seconds)
        elif kind == "process":
            metrics.observe_process(stage, seconds)
        else:
            metrics.observe_lag(seconds)


# -- the child ---------------------------------------------------------------------------------------------
def _child(settings: Settings, level: str, forever: bool, conn: multiprocessing.connection.Connection,
           inherited: multiprocessing.connection.Connection | None = None) -> None:  # fmt: skip
    """The processor role in this process: follow the daemon's sweep, drain, then (``forever``) run on.

    ``inherited``: the daemon's end of the pipe, which a forked child holds a copy of and closes here.
    """
    if inherited is not None:
        inherited.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the daemon too, which tells us to stop
    # SIGTERM (systemd stops the whole unit, a stray kill): finish the batch in hand, commit it and end; one that
    # comes while this process still starts is kept for the daemon below, not the default death
    terminated = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: terminated.set())
    from newsradar.cli import setup_logging
    from newsradar.daemon import Daemon

    setup_logging(level, settings, process="processor")
    metrics = ReportingMetrics()
    sending = threading.Lock()

    def send(kind: str, *payload: Any) -> None:
        with sending:
            conn.send((kind, *payload))

    try:
        daemon = Daemon(settings, role="processor", metrics=metrics)
    except BaseException as exc:  # e.g. the state store cannot be opened: the daemon stops, no restart loop
        send("failed", f"cannot start: {type(exc).__name__}: {exc}", *metrics.take())
        raise
    signal.signal(signal.SIGTERM, lambda *_: daemon.request_stop())
    if terminated.is_set():
        daemon.request_stop()
    swept = threading.Event()

    def commands() -> None:
        """The daemon's word: "swept" or "stop". Its end of the pipe closing means it died: end too."""
        while True:
            try:
                command = conn.recv()
            except (EOFError, OSError):
                os._exit(1)  # the batch in hand is not committed: the bus redelivers it
            if command == "swept":
                swept.set()
            elif command == "stop":
                swept.set()
                daemon.request_stop()

    def reports() -> None:
        while not daemon.stop.wait(REPORT_EVERY):
            send("report", *metrics.take())

    threading.Thread(target=commands, name="commands", daemon=True).start()
    threading.Thread(target=reports, name="reports", daemon=True).start()
    try:
        daemon.follow_stages(swept)
        if not daemon.stop.is_set():  # stopped before the end, it has not drained: the daemon must not think so
            send("drained", *metrics.take())
            if forever:
                daemon.run_stages()
    except BaseException as exc:
        send("failed", f"{type(exc).__name__}: {exc}", *metrics.take())
        raise
    finally:
        daemon.close()
    send("closed", *metrics.take())


def _spawn_child(settings: Settings, forever: bool, method: Literal["spawn", "fork"] = "spawn"
                 ) -> tuple[Any, multiprocessing.connection.Connection]:  # fmt: skip
    """Start a child process (``method``: a multiprocessing start method); returns it and our end of its pipe."""
    context = multiprocessing.get_context("fork") if method == "fork" else multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe(duplex=True)
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    # A forked child holds a copy of our end too: it closes it first, or our death would never reach it as EOF.
    inherited = ours if method == "fork" else None
    # daemonic: should this process end without stopping it (an error before the daemon adopted it), it goes too
    process = context.Process(target=_child, args=(settings, level, forever, theirs, inherited),
                              name="newsradar-processor", daemon=True)  # fmt: skip
    process.start()
    theirs.close()  # the child holds it; EOF on ours means the child ended
    return process, ours


_early: list[tuple[Settings, bool, Any, multiprocessing.connection.Connection]] = []


def start_early(settings: Settings, forever: bool) -> None:
    """Start the child now, before the daemon opens its stores and starts its threads; ``ProcessorProcess.start``
    adopts it.

    Forked, where it can be: this process has imported the daemon's modules and runs no thread yet, so a fork
    is safe and the child inherits them (a spawned child would import them again, about 0.4 s of a core, and
    start a resource tracker beside it). Its own start (the extraction and grouping modules, its stages)
    then runs on the other core while the daemon starts its sweep. Children started later (a restart) are
    spawned: by then the daemon runs threads.
    """
    if not _early:
        atexit.register(_end_unadopted)
    fork = "fork" in multiprocessing.get_all_start_methods() and _only_thread()
    _early.append((settings, forever, *_spawn_child(settings, forever, "fork" if fork else "spawn")))


def _only_thread() -> bool:
    """Whether this process runs no thread but the calling one, Python's or a library's own (then a fork copies no
    lock that another thread holds). Linux tells it in /proc; elsewhere the answer is no."""
    try:
        return threading.active_count() == 1 and len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _end_unadopted() -> None:
    """At exit, end a child spawned early that no daemon adopted (the daemon failed to start)."""
    while _early:
        _, _, process, conn = _early.pop()
        conn.close()  # its end of the pipe sees EOF and the child exits
        process.join(10)
        if process.is_alive():
            process.kill()


# -- the daemon's side -----------------------------------------------------------------------------------
class ProcessorProcess:
    """The child process of one daemon: started by ``start``, told of the sweep's end, stopped by ``stop``.

    ``drained`` is set once the child has drained every stage after ``swept`` (or has ended: then ``failure``
    says why), so the notifier, which follows it, never waits for ever. The two talk over one pipe (not
    multiprocessing's Event, whose ``set`` waits for a waiter that was killed).
    """

    def __init__(self, settings: Settings, metrics: Metrics, on_failure: Callable[[], Any]) -> None:
        self.settings = settings
        self.metrics = metrics
        self._on_failure = on_failure  # the daemon stops (and exits non-zero) when its stages failed
        self.drained = threading.Event()
        self.failure: str | None = None
        self.restarts = 0
        self._in_a_row = 0  # children that died soon after their start, in a row
        self._spawned_at = time.monotonic()
        self._swept = False
        self._stopping = threading.Event()
        self._forever = False
        self._lock = threading.Lock()  # the current child and its pipe
        self._process: Any = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._listener: threading.Thread | None = None
        metrics.component(COMPONENT)

    def start(self, forever: bool) -> None:
        """Start the child (``forever``: it runs the stages until ``stop``; else it ends once drained)."""
        if self._process is not None:
            return
        self._forever = forever
        self._spawn()

    def _spawn(self) -> None:
        with self._lock:
            early = next((e for e in _early if e[0] is self.settings and e[1] == self._forever), None)
            if early is not None:
                _early.remove(early)
                process, ours = early[2], early[3]
            else:
                process, ours = _spawn_child(self.settings, self._forever)
            self._process, self._conn, self._spawned_at = process, ours, time.monotonic()
            if self._swept:
                self._tell("swept")
            self._listener = threading.Thread(target=self._listen, args=(ours, process), name="processor-reports",
                                              daemon=True)  # fmt: skip
            self._listener.start()

    def _tell(self, command: str) -> None:
        try:
            if self._conn is not None:
                self._conn.send(command)
        except OSError:
            pass  # it has ended; the listener reports why

    def swept(self) -> None:
        """The daemon's sweep is done: nothing more arrives from it, so the child may drain."""
        with self._lock:
            self._swept = True
            self._tell("swept")

    def _listen(self, receive: multiprocessing.connection.Connection, process: Any) -> None:
        """Add the child's reports to the daemon's metrics until it ends; then restart it or give up."""
        closed = False
        while True:
            try:
                kind, *payload = receive.recv()
            except (EOFError, OSError):
                break
            if kind == "failed":
                self.failure = payload.pop(0)
            add_report(self.metrics, *payload)
            if kind == "drained":
                self.drained.set()
            closed = closed or kind == "closed"
        process.join()
        receive.close()
        if closed and self._forever:  # a SIGTERM to the whole unit (systemd) reaches the daemon too: let it stop
            self._stopping.wait(RESTART_AFTER)
        if closed and (self._stopping.is_set() or (self.drained.is_set() and not self._forever)):
            self.drained.set()  # (stopped: nothing follows it any more)
            return  # it ended as asked: stopped, or drained in a run --once
        if self.failure is None and self._forever and not self._stopping.is_set():
            why = ("the processor process stopped on its own (SIGTERM?)" if closed else
                   f"the processor process ended without a word (exit code {process.exitcode})")  # fmt: skip
            self.metrics.error(COMPONENT, why)
            # one that keeps dying (out of memory at each start) is started again less and less often
            lived = time.monotonic() - self._spawned_at
            self._in_a_row = 0 if lived > STEADY_AFTER else self._in_a_row + 1
            delay = min(RESTART_CAP, RESTART_AFTER * 2 ** max(0, self._in_a_row - 1))
            log.error("%s; starting it again in %.0fs (its batch in hand is redelivered)", why, delay)
            if not self._stopping.wait(delay):
                self.restarts += 1
                self._spawn()
            return
        # A stage failed (as a stage thread's failure stops a daemon in one process), or a run --once lost it
        self.failure = self.failure or (f"stopped before it drained (exit code {process.exitcode})" if closed else
                                        f"ended unexpectedly (exit code {process.exitcode})")  # fmt: skip
        self.metrics.error(COMPONENT, self.failure, permanent=True)
        log.error("processor process: %s", self.failure)
        self.drained.set()  # whoever follows it must not wait for ever; ``check`` raises the failure
        self._on_failure()

    def check(self) -> None:
        """Raise the child's failure, if it failed (after ``drained``)."""
        if self.failure is not None:
            raise NewsradarError(f"processor process: {self.failure}")

    def request_stop(self) -> None:
        """Ask the child to finish its batch in hand, commit and end (the daemon is stopping); do not wait."""
        self._stopping.set()
        with self._lock:
            self._tell("stop")

    def stop(self, timeout: float = 60.0) -> None:
        """Ask the child to finish its batch in hand, commit and end; wait for it (then kill it).

        Only the listener joins the child (two threads joining one process race on its exit status): waiting
        for the listener is waiting for the child.
        """
        self.request_stop()
        with self._lock:
            process, listener = self._process, self._listener
        if listener is None:
            return
        listener.join(timeout)
        if listener.is_alive():
            log.error("processor process did not end within %.0fs; killing it", timeout)
            process.kill()
            listener.join()
