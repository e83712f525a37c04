"""End to end, with real parts: feed server → bus → processors → Slack stand-in + SMTP server.

Three outlets' copies of one press release, two unrelated items and one item that says 포함 but never 포항
must give exactly one Slack alert that ends up showing 3 outlets, nothing else, and a digest holding
that story once.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from newsradar import settings as config
from newsradar.daemon import Daemon
from newsradar.store import Store
from notifiers import digest_mailer
from tests.e2e.feeds import POHAM_ONLY, PRESS_COPIES, UNRELATED, rss
from tests.servers.slack import TOKEN


def pipeline_settings(tmp_path: Path, http_server, slack_server, smtp_server, **extra) -> config.Settings:
    data = {
        "state_dir": str(tmp_path / "state"),
        "web": {"listen": "127.0.0.1:0"},  # any free port: tests may run beside a real daemon
        "http": {"per_host_delay": 0, "total_timeout": 10, "read_timeout": 5},
        "sources": [{"name": "regional", "url": http_server.url("/feed.xml"), "interval": 60}],
        "slack": {"base_url": slack_server.base_url, "default_channel": "#news", "min_interval": 0,
                  "routes": [{"terms": ["포항"], "channel": "#pohang"}]},
        "smtp": {"host": "127.0.0.1", "port": smtp_server.port, "security": "none"},
        "digest": {"time": "00:00", "recipients": ["watcher@example.com"]},
        **extra,
    }
    return config.parse(data, "test-config")


@pytest.fixture
def slack_env(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)


def test_three_copies_make_one_alert_showing_three_outlets_and_one_digest_line(
    tmp_path, http_server, slack_server, smtp_server, slack_env
):
    settings = pipeline_settings(tmp_path, http_server, slack_server, smtp_server)
    # First poll: the first copy, one unrelated item and the 포함-only item.
    http_server.add("/feed.xml", rss([PRESS_COPIES[0], UNRELATED[0], POHAM_ONLY]),
                    headers={"Content-Type": "application/rss+xml; charset=utf-8"})
    summaries = Daemon(settings).run_once()
    assert [(s.source, s.new_items, s.error) for s in summaries] == [("regional", 3, None)]
    assert len(slack_server.posts) == 1

    # Second poll (a restart in between): the other two copies and another unrelated item arrive.
    http_server.add("/feed.xml", rss(PRESS_COPIES + UNRELATED + [POHAM_ONLY]),
                    headers={"Content-Type": "application/rss+xml; charset=utf-8"})
    Daemon(settings).run_once()

    assert len(slack_server.posts) == 1, [c.params.get("text") for c in slack_server.posts]
    messages = slack_server.messages("#pohang")
    assert len(messages) == 1 and not slack_server.messages("#news")
    final = messages[0]
    rendered = final.text + str(final.blocks)
    assert "3" in rendered and all(copy.outlet in rendered for copy in PRESS_COPIES)
    assert PRESS_COPIES[0].title.split(",")[0] in rendered  # the lead (earliest copy) is the headline
    for other in UNRELATED + [POHAM_ONLY]:
        assert other.title not in str([c.params for c in slack_server.calls])

    store = Store(Path(settings.state_dir) / "state.db")
    try:
        mailer = digest_mailer(settings, store)
        now = datetime.now(timezone.utc)
        assert mailer.send_due(now) == ["watcher@example.com"]
        assert mailer.send_due(now) == []  # once per day
    finally:
        store.close()
    assert len(smtp_server.messages) == 1
    mail = smtp_server.messages[0].message
    text = mail.get_body(preferencelist=("plain",)).get_content()
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert text.count(PRESS_COPIES[0].title) == 1 and PRESS_COPIES[0].title in html
    assert "3" in text and POHAM_ONLY.title not in text and UNRELATED[0].title not in text


def test_demo_config_runs_offline_and_writes_an_alert_and_a_digest(tmp_path, monkeypatch):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    root = Path(__file__).resolve().parents[2]
    settings = config.load(root / "config" / "demo.yaml").model_copy(update={"state_dir": str(tmp_path / "demo")})
    summaries = Daemon(settings).run_once()
    assert all(s.error is None and s.new_items > 0 for s in summaries), summaries
    alerts = sorted((tmp_path / "demo" / "alerts").glob("*"))
    texts = [p.read_text(encoding="utf-8") for p in alerts]
    assert any("3" in t and "특화단지" in t for t in texts), texts  # the press release, carried by 3 outlets
    assert any("CIBF" in t for t in texts)  # the city press page, extracted from its furniture
    assert not any("독서교실" in t for t in texts)  # furniture mentioning 포항 must not make it an alert
    store = Store(tmp_path / "demo" / "state.db")
    try:
        assert digest_mailer(settings, store).send_due(datetime.now(timezone.utc)) == ["you@example.com"]
    finally:
        store.close()
    assert list((tmp_path / "demo" / "digests").glob("*.html"))
