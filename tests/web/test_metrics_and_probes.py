"""/metrics scraped over HTTP and parsed with prometheus-client's own parser; /healthz and /readyz answering
200 or 503 as the bus, the state store and the notifier (invalid_auth) hold or fail."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.feeds import DISTINCT, PRESS_COPIES, UNRELATED, rss
from tests.servers.http import HttpServer
from tests.servers.slack import TOKEN, SlackStandIn
from tests.web.dashboard import serving, web_settings

XML = {"Content-Type": "application/rss+xml; charset=utf-8"}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bot_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    for name in ("SLACK_WEBHOOK_URL", "NEWSRADAR_OPS_WEBHOOK_URL", "NEWSRADAR_WEB_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def _settings(tmp_path: Path, http_server: HttpServer, slack: SlackStandIn):  # noqa: ANN202
    http_server.add("/regional.xml", rss(PRESS_COPIES + UNRELATED), headers=XML)
    http_server.add("/broken.xml", b"nope", status=500)
    return web_settings(tmp_path, [
        {"name": "regional-feed", "url": http_server.url("/regional.xml")},
        {"name": "broken-feed", "url": http_server.url("/broken.xml")},
    ], slack={"base_url": slack.base_url}, source_health={"failures": 2})


def _scrape(address: str) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """{family: {(sample name, sorted labels): value}} from /metrics, through prometheus-client's parser."""
    response = httpx.get(f"{address}metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain; version=")
    out: dict = {}
    for family in text_string_to_metric_families(response.text):
        samples = out.setdefault(f"{family.name}:{family.type}", {})
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(metrics: dict, family: str, sample: str, **labels: str) -> float:
    return metrics[family][(sample, tuple(sorted(labels.items())))]


def test_metrics_are_scraped_and_parsed_with_prometheus_names(
    tmp_path: Path, http_server: HttpServer, slack_server: SlackStandIn, bot_token: None,
) -> None:
    with serving(_settings(tmp_path, http_server, slack_server), sweeps=2) as (_daemon, address):
        metrics = _scrape(address)
    families = set(metrics)
    src = "newsradar_source_items_received:counter"
    assert _value(metrics, src, "newsradar_source_items_received_total", source="regional-feed") == 10  # 2 polls
    assert _value(metrics, "newsradar_source_items_emitted:counter", "newsradar_source_items_emitted_total",
                  source="regional-feed") == 5
    # the second poll saw the same five again: known, skipped, neither emitted nor counted as dropped
    errors = metrics["newsradar_source_errors:counter"]
    assert errors[("newsradar_source_errors_total", (("kind", "TransientError"), ("source", "broken-feed")))] == 2
    polls = metrics["newsradar_source_poll_duration_seconds:histogram"]
    assert polls[("newsradar_source_poll_duration_seconds_count", (("source", "regional-feed"),))] == 2
    assert polls[("newsradar_source_poll_duration_seconds_bucket", (("le", "+Inf"), ("source", "broken-feed")))] == 2
    last = _value(metrics, "newsradar_source_last_success_timestamp_seconds:gauge",
                  "newsradar_source_last_success_timestamp_seconds", source="regional-feed")
    assert abs(last - time.time()) < 120
    for stage in ("processor", "grouper", "notifier"):
        assert _value(metrics, "newsradar_stage_events_received:counter", "newsradar_stage_events_received_total",
                      stage=stage) > 0
        assert _value(metrics, "newsradar_stage_dead_letters:counter", "newsradar_stage_dead_letters_total",
                      stage=stage) == 0
        assert _value(metrics, "newsradar_stage_batch_duration_seconds:histogram",
                      "newsradar_stage_batch_duration_seconds_count", stage=stage) > 0
    # the grouper drops the unrelated stories on purpose; the processor emits one article per item
    assert _value(metrics, "newsradar_stage_events_dropped:counter", "newsradar_stage_events_dropped_total",
                  stage="grouper", reason="unspecified") == len(UNRELATED)
    lag = metrics["newsradar_notify_lag_seconds:histogram"]
    assert lag[("newsradar_notify_lag_seconds_count", ())] == len(PRESS_COPIES)  # one per copy, alerted or edited
    assert 0 <= lag[("newsradar_notify_lag_seconds_sum", ())] < 120
    for kind in ("alert", "digest", "source_alert"):
        pending = _value(metrics, "newsradar_outbox_pending:gauge", "newsradar_outbox_pending", kind=kind)
        assert pending == 0  # everything begun was delivered (the ops alert to the console: no ops channel)
    assert _value(metrics, "newsradar_source_consecutive_failures:gauge", "newsradar_source_consecutive_failures",
                  source="broken-feed") == 2
    assert _value(metrics, "newsradar_sources_broken:gauge", "newsradar_sources_broken") == 1

    for family in families:
        name, kind = family.split(":")
        assert re.fullmatch(r"newsradar_[a-z0-9_]+", name), name
        assert kind != "counter" or not name.endswith("_total")  # the parser strips _total from counter families
        assert kind != "histogram" or name.endswith("_seconds"), name
        assert "timestamp" not in name or name.endswith("_timestamp_seconds"), name
    readme = (ROOT / "README.md").read_text(encoding="utf-8").split("## Dashboard, metrics and probes", 1)[1]
    undocumented = sorted(f.split(":")[0] for f in families if f"`{f.split(':')[0]}" not in readme)
    assert not undocumented, f"README's metrics list lacks {undocumented}"


def test_healthz_and_readyz(tmp_path: Path, http_server: HttpServer, slack_server: SlackStandIn, bot_token: None,
                            ) -> None:
    with serving(_settings(tmp_path, http_server, slack_server)) as (daemon, address):
        health = httpx.get(f"{address}healthz")
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        ready = httpx.get(f"{address}readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ready", "checks": {"bus": "ok", "store": "ok", "notifier": "ok",
                                                              "source-alerts": "ok"}}

        # a permanent notifier error: the bot token is refused
        slack_server.fail_next(20, "invalid_auth")
        http_server.add("/regional.xml", rss([*PRESS_COPIES, *UNRELATED, DISTINCT[5]]), headers=XML)  # a new story
        daemon.collect.poll("regional-feed")
        daemon.drain()
        ready = httpx.get(f"{address}readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["notifier"] == "error", ready.text
        assert "invalid_auth" not in ready.text  # names the check, not the error
        assert httpx.get(f"{address}healthz").status_code == 200  # alive, not ready

        daemon.bus.close()  # the bus stops answering
        checks = httpx.get(f"{address}readyz").json()["checks"]
        assert checks["bus"] == "error" and checks["store"] == "ok"
        daemon.store.close()
        assert httpx.get(f"{address}readyz").json()["checks"]["store"] == "error"
        daemon.bus = _Closed()  # close() below must not trip over what the test already closed
        daemon.store = _Closed()


class _Closed:
    def close(self) -> None:
        """Already closed by the test."""

    def write(self, *_args: object) -> None:
        """Nothing to write."""
