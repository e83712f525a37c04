"""The stage runner: consume a topic, process each event, publish results, flush effects, then commit.

This is the one place retries live. A ``TransientError`` (Slack 429, SMTP down,
broker restarting) is retried with capped exponential backoff and jitter,
honouring ``retry_after``, for as long as it takes: nothing is committed, so
nothing is lost. Any other failure of one event is retried a few times and then
the event goes to the dead-letter topic with the reason, counted and logged,
and the stage moves on. Offsets are committed only after the batch's outputs
are published and its effects flushed (at-least-once; effects are idempotent).
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar

from newsradar import events
from newsradar.bus.base import DEAD_LETTER, Bus, Consumer, Delivery
from newsradar.errors import PermanentError, StateError, TransientError
from newsradar.events import DeadLetter
from newsradar.metrics import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")

Output = tuple[str, str, Any]  # (topic, key, event)


class Stage(Protocol):
    """What a stage provides to the runner."""

    name: str
    topic: str
    group: str

    def process(self, event: Any) -> list[Output]:
        """Turn one event into zero or more outputs; an empty list is a counted, intentional drop."""

    def flush(self) -> None:
        """Make the effects of processed events durable (send buffered alerts); may raise TransientError."""


def backoff(attempt: int, retry_after: float | None = None, cap: float = 60.0) -> float:
    """Seconds to wait before attempt ``attempt + 1``: Retry-After when given, else capped exponential with jitter."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), cap * 10)
    base = min(cap, 0.5 * (2 ** min(attempt, 10)))
    return base / 2 + random.uniform(0, base / 2)


class StageRunner:
    """Runs one stage as a member of its consumer group until stopped."""

    def __init__(
        self,
        stage: Stage,
        bus: Bus,
        metrics: Metrics,
        stop: threading.Event,
        max_attempts: int = 5,
        batch_size: int = 100,
    ) -> None:
        self.stage = stage
        self.bus = bus
        self.metrics = metrics
        self.stop = stop
        self.max_attempts = max_attempts
        self.batch_size = batch_size
        self._consumer: Consumer | None = None
        self.failure: Exception | None = None  # set when the runner stopped on a state-store failure

    @property
    def consumer(self) -> Consumer:
        if self._consumer is None:
            self._consumer = self.bus.consumer(self.stage.topic, self.stage.group)
        return self._consumer

    def run(self, poll_timeout: float = 1.0) -> None:
        """Loop until ``stop`` is set; the batch in hand is finished and committed before returning."""
        try:
            while not self.stop.is_set():
                self.step(poll_timeout)
        except _Stopped as exc:
            log.info("%s", exc)
        except StateError as exc:
            log.critical("%s: state store failure, stopping without committing: %s", self.stage.name, exc)
            self.failure = exc
            self.stop.set()
        finally:
            self.close()

    @contextmanager
    def _until_stopped(self) -> Iterator[None]:
        """Around a loop of steps: a stop request ends it quietly; a state store failure is logged and raised."""
        try:
            yield
        except _Stopped as exc:
            log.info("%s", exc)
        except StateError as exc:
            log.critical("%s: state store failure, stopping without committing: %s", self.stage.name, exc)
            raise

    def drain(self, idle_polls: int = 2, poll_timeout: float = 0.3) -> int:
        """Process until the topic has been empty for ``idle_polls`` polls; returns events handled."""
        handled, idle = 0, 0
        with self._until_stopped():
            while idle < idle_polls and not self.stop.is_set():
                n = self.step(poll_timeout)
                handled += n
                idle = 0 if n else idle + 1
        return handled

    def follow(self, upstream_done: threading.Event, idle_polls: int = 2, poll_timeout: float = 0.3,
               linger: float = 0.1) -> int:  # fmt: skip
        """Process while the stages upstream still run, then ``drain``; returns events handled (run --once).

        Until ``upstream_done`` is set a short batch only means "not yet": wait up to ``linger`` seconds for
        more to arrive before polling again (a batch has fixed costs: a transaction, an fsync, a commit, so a
        stream of tiny batches would cost more than the overlap saves). Once it is set, everything upstream is
        published, so the ``drain`` that follows misses nothing.
        """
        handled = 0
        with self._until_stopped():
            while not upstream_done.is_set() and not self.stop.is_set():
                n = self.step(0.0)
                handled += n
                if n < self.batch_size:
                    upstream_done.wait(linger)  # wakes at once when the upstream ends
            return handled + self.drain(idle_polls, poll_timeout)
        return handled  # stopped

    def step(self, poll_timeout: float) -> int:
        """Poll one batch, handle it, commit it. Returns the number of deliveries."""
        deliveries = self.consumer.poll(self.batch_size, poll_timeout)
        if not deliveries:
            return 0
        name = self.stage.name
        started = time.monotonic()
        # The batch's effects are made durable first (the flush: a grouper's one transaction, a notifier's
        # sends), then its outputs are published together (one durable write per topic, in order), then its
        # offsets committed: a crash anywhere before the commit redelivers the batch, which the stages
        # handle idempotently, and never loses an output.
        by_topic: dict[str, list[tuple[str, Any]]] = {}
        for delivery in deliveries:
            self.metrics.count(name, "received")
            outputs = self._process(delivery)
            if outputs is None:
                continue
            if not outputs and not getattr(self.stage, "terminal", False):
                self.metrics.count(name, "dropped")
            for topic, key, event in outputs:
                by_topic.setdefault(topic, []).append((key, event))
        flushed = True
        try:
            self._retry_transient(self.stage.flush, "flush")
        except (_Stopped, StateError):
            raise
        except Exception as exc:  # noqa: BLE001 - a permanent failure of the sink must be loud, not fatal
            flushed = False
            reason = f"flush failed permanently: {type(exc).__name__}: {exc}"
            self.metrics.error(name, reason, permanent=True, kind=type(exc).__name__)
            log.error("%s: %s; dead-lettering %d deliveries", name, reason, len(deliveries))
            for delivery in deliveries:
                self._dead_letter(delivery, reason, 1)
        for topic, items in by_topic.items() if flushed else ():  # dead-lettered deliveries publish nothing
            self._retry_transient(functools.partial(self.bus.publish_many, topic, items), "publish")
            self.metrics.count(name, "emitted", len(items))
        self._retry_transient(lambda: self.consumer.commit(deliveries), "commit")
        if flushed:
            self.metrics.success(name)  # a dead-lettered flush stays unhealthy until a flush succeeds
        self.metrics.observe_batch(name, time.monotonic() - started)
        return len(deliveries)

    def _process(self, delivery: Delivery) -> list[Output] | None:
        """Process one delivery; None means it went to the dead-letter topic."""
        name = self.stage.name
        attempts = 0
        while True:
            attempts += 1
            try:
                return self._retry_transient(
                    lambda: self.metrics.timed_process(name, self.stage.process, delivery.event), "process")
            except _Stopped:
                raise
            except StateError as exc:
                self.metrics.error(name, f"{type(exc).__name__}: {exc}", permanent=True)
                raise  # our own disk: dead-lettering would lose the event once the disk is fixed
            except Exception as exc:  # noqa: BLE001 - any failure of one event must not stop the stage
                permanent = isinstance(exc, (PermanentError, ValueError))
                log.warning(
                    "%s: event %s/%s@%s failed (attempt %d/%d): %s",
                    name, delivery.topic, delivery.partition, delivery.offset, attempts, self.max_attempts, exc,
                )
                self.metrics.error(name, f"{type(exc).__name__}: {exc}")
                if permanent or attempts >= self.max_attempts:
                    self._dead_letter(delivery, f"{type(exc).__name__}: {exc}", attempts)
                    return None
                time.sleep(backoff(attempts))

    def _dead_letter(self, delivery: Delivery, reason: str, attempts: int) -> None:
        letter = DeadLetter(
            topic=delivery.topic,
            key=delivery.key,
            payload=delivery.payload.decode("utf-8", errors="replace"),
            reason=reason,
            attempts=attempts,
            failed_at=datetime.now(timezone.utc),
        )
        self._retry_transient(lambda: self.bus.publish(DEAD_LETTER, delivery.key or "-", letter), "dead-letter")
        self.metrics.count(self.stage.name, "dead_lettered")
        log.error("%s: sent %s@%s to %s: %s", self.stage.name, delivery.topic, delivery.offset, DEAD_LETTER, reason)

    def _retry_transient(self, action: Callable[[], T], what: str) -> T:
        """Retry ``action`` on TransientError until it succeeds or the runner is stopped."""
        attempt = 0
        while True:
            try:
                return action()
            except TransientError as exc:
                attempt += 1
                delay = backoff(attempt, exc.retry_after)
                self.metrics.error(self.stage.name, f"{what}: {exc}", kind=type(exc).__name__)
                log.warning("%s: %s failed (transient, retry in %.1fs): %s", self.stage.name, what, delay, exc)
                if self.stop.wait(delay):
                    raise _Stopped(f"{self.stage.name}: stopped while retrying {what}") from exc

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


class _Stopped(Exception):
    """Raised out of a retry loop when shutdown was requested; the batch stays uncommitted."""


REPLAY_GROUP = "newsradar-dead-letter-replay"


def dead_letters(bus: Bus, replay: bool = False) -> list[DeadLetter]:
    """Read the dead-letter topic; with ``replay``, republish each event to its topic and commit.

    Listing uses a throwaway group, so it shows everything and changes nothing. Replaying uses one
    fixed group and commits after republishing, so each dead letter is replayed once.
    """
    group = REPLAY_GROUP if replay else f"newsradar-dead-letter-list-{uuid.uuid4().hex[:8]}"
    consumer = bus.consumer(DEAD_LETTER, group)
    letters: list[DeadLetter] = []
    try:
        while deliveries := consumer.poll(500, 1.0):
            batch = [d.event for d in deliveries]
            if replay:
                for letter in batch:
                    bus.publish(letter.topic, letter.key, events.decode(letter.payload))
                consumer.commit(deliveries)
            letters += batch
    finally:
        consumer.close()
    return letters
