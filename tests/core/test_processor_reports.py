"""The processor process's reports: what the child counts and times reaches the daemon's metrics exactly once."""

from __future__ import annotations

from newsradar.metrics import Metrics
from newsradar.processor_process import ReportingMetrics, add_report


def _histogram_count(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(f"{name}_count", labels)
    return value or 0.0


def test_reports_add_up_to_what_the_child_counted_and_timed() -> None:
    child, daemon = ReportingMetrics(), Metrics()
    child.component("grouper")
    add_report(daemon, *child.take())  # the first report names every component, even with nothing counted
    assert daemon.component("grouper").counts == {}
    assert "grouper" in daemon.snapshot()["components"]

    child.count("grouper", "received", 3)
    child.error("grouper", "ValueError: bad event")
    assert child.timed_process("grouper", lambda e: e * 2, 21) == 42
    child.observe_batch("grouper", 0.25)
    add_report(daemon, *child.take())
    child.count("grouper", "received", 2)
    child.success("grouper")
    child.observe_lag(3.0)
    add_report(daemon, *child.take())
    add_report(daemon, *child.take())  # nothing new: nothing added twice

    grouper = daemon.component("grouper")
    assert grouper.counts["received"] == 5 and grouper.counts["errors"] == 1
    assert grouper.error_kinds == {"ValueError": 1} and grouper.last_error == "ValueError: bad event"
    assert grouper.last_success_at is not None
    assert _histogram_count(daemon, "newsradar_stage_process_duration_seconds", stage="grouper") == 1
    assert _histogram_count(daemon, "newsradar_stage_batch_duration_seconds", stage="grouper") == 1
    assert _histogram_count(daemon, "newsradar_notify_lag_seconds") == 1
