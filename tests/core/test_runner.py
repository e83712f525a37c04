"""The stage runner: transient errors retried without loss, bad events dead-lettered, commits after effects."""

import threading
from datetime import datetime, timezone

from newsradar.bus.base import DEAD_LETTER
from newsradar.bus.embedded import EmbeddedBus
from newsradar.errors import TransientError
from newsradar.events import DeadLetter, RawItem
from newsradar.metrics import Metrics
from newsradar.runner import StageRunner

NOW = datetime(2026, 11, 23, tzinfo=timezone.utc)


def _raw(i: int) -> RawItem:
    return RawItem(id=f"r{i}", source="s", outlet="o", url="u", canonical_url="u", title=f"t{i}", fetched_at=NOW)


class Recorder:
    name, topic, group = "rec", "in", "g"

    def __init__(self, fail_transient: int = 0, poison: str | None = None) -> None:
        self.fail_transient = fail_transient
        self.poison = poison
        self.flushed: list[list[str]] = []
        self.pending: list[str] = []

    def process(self, event):
        if event.id == self.poison:
            raise ValueError("cannot handle this item")
        if self.fail_transient:
            self.fail_transient -= 1
            raise TransientError("service busy", retry_after=0.01)
        self.pending.append(event.id)
        return [("out", event.id, event)]

    def flush(self):
        self.flushed.append(self.pending)
        self.pending = []


def _runner(tmp_path, stage):
    bus = EmbeddedBus(tmp_path / "bus.db")
    for i in range(3):
        bus.publish("in", f"k{i}", _raw(i))
    return bus, StageRunner(stage, bus, Metrics(), threading.Event(), max_attempts=2)


def test_transient_errors_are_retried_and_nothing_is_lost(tmp_path):
    stage = Recorder(fail_transient=3)
    bus, runner = _runner(tmp_path, stage)
    assert runner.drain() == 3
    assert sorted(sum(stage.flushed, [])) == ["r0", "r1", "r2"]
    assert bus.backlog("in", "g") == 0 and bus.backlog("out", "x") == 3


def test_poison_event_goes_to_dead_letter_with_reason_and_others_flow(tmp_path):
    stage = Recorder(poison="r1")
    bus, runner = _runner(tmp_path, stage)
    runner.drain()
    assert sum(stage.flushed, []) == ["r0", "r2"]
    consumer = bus.consumer(DEAD_LETTER, "inspect")
    letters = [d.event for d in consumer.poll(10, 0.1)]
    assert len(letters) == 1 and isinstance(letters[0], DeadLetter)
    assert "cannot handle this item" in letters[0].reason and '"r1"' in letters[0].payload
    assert runner.metrics.snapshot()["components"]["rec"]["counts"]["dead_lettered"] == 1


def test_undecodable_payload_is_dead_lettered(tmp_path):
    stage = Recorder()
    bus, runner = _runner(tmp_path, stage)
    with bus._lock:
        bus._conn.execute("INSERT INTO messages VALUES ('in', 0, 3, 'bad', X'7b7d', 0)")
    runner.drain()
    letters = [d.event for d in bus.consumer(DEAD_LETTER, "inspect").poll(10, 0.1)]
    assert [letter.key for letter in letters] == ["bad"]


def test_stop_during_transient_retry_leaves_the_batch_uncommitted(tmp_path):
    stage = Recorder(fail_transient=10**6)
    bus, runner = _runner(tmp_path, stage)
    threading.Timer(0.3, runner.stop.set).start()
    runner.run(poll_timeout=0.1)
    assert bus.backlog("in", "g") == 3  # nothing committed: a restart redelivers everything


def test_follow_handles_what_arrives_while_upstream_runs_and_everything_after_once(tmp_path):
    """run --once: a stage beside a publisher (as beside the sweep) ends with every event handled exactly once."""
    bus = EmbeddedBus(tmp_path / "bus.db")
    stage = Recorder()
    runner = StageRunner(stage, bus, Metrics(), threading.Event(), batch_size=7)
    upstream_done = threading.Event()

    def publish() -> None:
        publisher = EmbeddedBus(tmp_path / "bus.db")  # its own connection, as a sweep worker process has
        try:
            for i in range(60):
                publisher.publish_many("in", [(f"k{i % 5}", _raw(i))])
                if i % 20 == 19:
                    upstream_done.wait(0.05)  # pauses: the stage catches up and finds nothing for a while
        finally:
            publisher.close()
            upstream_done.set()  # after the last publish returned, as the daemon sets it after the sweep

    thread = threading.Thread(target=publish)
    thread.start()
    handled = runner.follow(upstream_done, idle_polls=1, poll_timeout=0.0, linger=0.01)
    thread.join()
    runner.close()
    seen = [i for batch in stage.flushed for i in batch]
    assert handled == 60 and sorted(seen) == sorted(f"r{i}" for i in range(60))
    assert len(stage.flushed) > 1  # it did run beside the publisher, batch by batch
    assert bus.backlog("in", "g") == 0
