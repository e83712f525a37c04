"""Source health: the incident rules (one alert, one recovery) and their compare-and-set storage."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from newsradar import settings as config
from newsradar.source_health import FAILING, HEALTHY, SILENT, SourceHealth, after_check, after_poll, fresh
from newsradar.store import Store

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
DAY = 86400.0


def _polls(outcomes: list[str | None], period: float = DAY, new_items: int = 1) -> list[str]:
    """Run outcomes (None: success with new items, str: an error) through after_poll; the alert kinds."""
    status, kinds = fresh("feed", T0), []
    for i, error in enumerate(outcomes):
        status, alert = after_poll(status, T0 + timedelta(minutes=10 * i), new_items, error, failures=3,
                                   period=period)
        if alert is not None:
            kinds.append(alert.kind)
    return kinds


def test_three_failures_in_a_row_open_one_incident_and_one_success_closes_it():
    assert _polls(["e", "e"]) == []
    assert _polls(["e", "e", "e"]) == [FAILING]
    assert _polls(["e", "e", "e", "e", "e", "e", "e"]) == [FAILING]  # never one per poll
    assert _polls(["e", "e", "e", "e", None]) == [FAILING, "recovered"]
    assert _polls(["e", "e", None, "e", "e", None]) == []  # never three in a row
    assert _polls(["e", "e", "e", None, "e", "e", "e", None]) == [FAILING, "recovered", FAILING, "recovered"]


def test_failing_alert_carries_the_streak_and_the_last_error():
    status = fresh("feed", T0)
    for i in range(3):
        status, alert = after_poll(status, T0 + timedelta(minutes=i), 0, f"HTTPStatusError: 50{i}", failures=3,
                                   period=DAY)
    assert alert is not None and alert.kind == FAILING
    assert alert.failures == 3 and alert.since == T0 and alert.detail == "HTTPStatusError: 502"
    assert status.status == FAILING and status.incident_since == T0


def test_silence_opens_an_incident_that_only_a_new_item_closes():
    status = fresh("feed", T0)
    status, alert = after_poll(status, T0, 1, None, failures=3, period=3600)
    assert alert is None and status.last_item_at == T0
    assert after_check(status, T0 + timedelta(minutes=59), period=3600) is None
    status, alert = after_check(status, T0 + timedelta(minutes=61), period=3600)
    assert status.status == SILENT and alert.kind == SILENT
    assert after_check(status, T0 + timedelta(hours=5), period=3600) is None  # once
    status, alert = after_poll(status, T0 + timedelta(hours=6), 0, None, failures=3, period=3600)
    assert alert is None and status.status == SILENT  # polls work but still nothing new
    status, alert = after_poll(status, T0 + timedelta(hours=7), 2, None, failures=3, period=3600)
    assert alert.kind == "recovered" and status.status == HEALTHY and status.incident_since is None


def test_silent_then_failing_is_one_incident_with_one_recovery():
    status = fresh("feed", T0)
    status, _ = after_check(status, T0 + timedelta(hours=2), period=3600)
    kinds = []
    for i in range(5):
        status, alert = after_poll(status, T0 + timedelta(hours=3, minutes=i), 0, "ConnectError", failures=3,
                                   period=3600)
        kinds += [alert.kind] if alert else []
    assert status.status == FAILING and kinds == []
    status, alert = after_poll(status, T0 + timedelta(hours=4), 1, None, failures=3, period=3600)
    assert alert.kind == "recovered" and alert.since == T0 + timedelta(hours=2)


def test_a_failing_source_that_recovers_into_silence_stays_in_its_incident():
    status = fresh("feed", T0)
    for i in range(3):
        status, _ = after_poll(status, T0 + timedelta(minutes=i), 0, "e", failures=3, period=3600)
    status, alert = after_poll(status, T0 + timedelta(hours=3), 0, None, failures=3, period=3600)
    assert alert is None and status.status == SILENT


def _health(tmp_path: Path, **source_health: object) -> tuple[SourceHealth, Store]:
    settings = config.parse({"state_dir": str(tmp_path), "sources": [
        {"name": "feed", "url": "http://127.0.0.1:9/feed.xml"},
        {"name": "rare", "url": "http://127.0.0.1:9/rare.xml", "expected_period": 7 * DAY}],
        "source_health": source_health})
    store = Store(tmp_path / "state.db")
    return SourceHealth(settings, store), store


def test_stored_incidents_survive_a_restart_and_are_queued_once(tmp_path):
    health, store = _health(tmp_path)
    health.record_poll("feed", T0, 0, "ConnectError: refused")
    health.record_poll("feed", T0 + timedelta(minutes=10), 0, "ConnectError: refused")
    store.close()
    health, store = _health(tmp_path)  # a restart between the second and third failure
    assert store.source_status("feed").failures == 2
    alert = health.record_poll("feed", T0 + timedelta(minutes=20), 0, "ConnectError: refused")
    assert alert is not None and [a.id for a in store.source_alerts_to_send()] == [alert.id]
    assert health.record_poll("feed", T0 + timedelta(minutes=30), 0, "ConnectError: refused") is None
    recovered = health.record_poll("feed", T0 + timedelta(minutes=40), 3, None)
    assert [a.kind for a in store.source_alerts_to_send()] == [FAILING, "recovered"]
    assert recovered.since == T0
    assert store.items_since(T0 - timedelta(seconds=1)) == {"feed": 3}
    store.close()


def test_a_stale_writer_loses_the_compare_and_set_and_decides_again(tmp_path):
    health, store = _health(tmp_path)
    health.record_poll("feed", T0, 1, None)
    stale = store.source_status("feed")
    health.record_poll("feed", T0 + timedelta(minutes=1), 1, None)
    status, alert = after_check(stale, T0 + timedelta(days=3), period=DAY)
    assert store.save_source_status(status, stale.version, alert=alert) is False
    assert store.source_alerts_to_send() == []
    queued = health.check(["feed"], T0 + timedelta(days=3))
    assert [a.kind for a in queued] == [SILENT] and len(store.source_alerts_to_send()) == 1
    assert health.check(["feed"], T0 + timedelta(days=4)) == []
    store.close()


def test_expected_period_per_source_overrides_silent_after(tmp_path):
    health, store = _health(tmp_path, silent_after=DAY)
    for name in ("feed", "rare"):
        health.record_poll(name, T0, 1, None)
    queued = health.check(["feed", "rare"], T0 + timedelta(days=2))
    assert [a.source for a in queued] == ["feed"]
    store.close()


@pytest.mark.parametrize("bad", [{"failures": 0}, {"silent_after": 0}, {"check_interval": 0}, {"chanel": "#x"}])
def test_source_health_settings_are_validated(bad):
    with pytest.raises(config.ConfigError, match="source_health"):
        config.parse({"source_health": bad})
