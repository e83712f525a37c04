"""The no-Slack fallback (printed alerts kept as files) and the factories that pick a notifier from config."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsradar.store import Store
from notifiers import ConsoleAlerts, SlackNotifier, alert_sink, digest_mailer
from notifiers.console import DigestFiles
from notifiers.email import SmtpTransport
from tests.notifiers.stories import OUTLETS, make_story, settings, update
from tests.servers.slack import TOKEN, SlackStandIn


@pytest.fixture
def no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_WEBHOOK_URL", "SMTP_USERNAME", "SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def test_console_alert_is_printed_and_kept_as_a_file(
    tmp_path: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    sink = ConsoleAlerts(settings(tmp_path), store)
    story = make_story()
    sink.add(update(story))
    sink.flush()
    out = capsys.readouterr().out
    path = tmp_path / "alerts" / "story0001--news-radar.txt"
    assert path.read_text(encoding="utf-8") in out
    assert "[newsradar] 새 기사 · 키워드: 이차전지 · #news-radar" in out
    assert "매체: 연합뉴스 · 2026-06-14 17:17 KST" in out and "【이차전지】" in out
    assert store.alert(story.id, "#news-radar") == ("sent", str(path), 1)
    sink.add(update(story))
    sink.flush()
    ConsoleAlerts(settings(tmp_path), store).flush()
    restarted = ConsoleAlerts(settings(tmp_path), store)
    restarted.add(update(story))
    restarted.flush()
    assert capsys.readouterr().out == ""  # nothing printed twice, also after a restart


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("file:///srv/newsradar/demo/city/press-1203.html", "링크: file:///srv/newsradar/demo/city/press-1203.html"),
        ("javascript:alert(1)", "링크: (없음)"),
        ("file://attacker.example/share/a.html", "링크: (없음)"),
    ],
)
def test_console_alert_shows_a_local_file_link_and_no_unsafe_one(
    url: str, shown: str, tmp_path: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """The offline demo's HTML pages are file:// URLs: the reader is on this machine and can open them."""
    sink = ConsoleAlerts(settings(tmp_path), store)
    sink.add(update(make_story(url=url)))
    sink.flush()
    assert shown in capsys.readouterr().out.splitlines()


def test_console_update_rewrites_the_file(tmp_path: Path, store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    sink = ConsoleAlerts(settings(tmp_path), store)
    sink.add(update(make_story()))
    sink.flush()
    for n in (2, 3):
        sink.add(update(make_story(outlets=OUTLETS[:n])))
    sink.flush()
    printed = capsys.readouterr().out
    assert printed.count("보도 매체 증가") == 1
    text = (tmp_path / "alerts" / "story0001--news-radar.txt").read_text(encoding="utf-8")
    assert "3개 매체 보도: 연합뉴스, 뉴시스, 뉴스1" in text
    assert store.alert("story0001", "#news-radar")[2] == 3  # type: ignore[index]


def test_console_pending_with_file_is_adopted(tmp_path: Path, store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    sink = ConsoleAlerts(settings(tmp_path), store)
    sink.add(update(make_story()))
    sink.flush()
    capsys.readouterr()
    store.record_alert("story0001", "#news-radar", "pending", None, 1)  # crash after the write
    sink.add(update(make_story()))
    sink.flush()
    assert capsys.readouterr().out == ""
    assert store.alert("story0001", "#news-radar")[0] == "sent"  # type: ignore[index]


def test_console_hostile_names_and_text_stay_contained(
    tmp_path: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = settings(tmp_path, slack={"default_channel": "../../etc/passwd"})
    sink = ConsoleAlerts(cfg, store)
    sink.add(update(make_story("../../escape", title="제목\x1b[2J\x1b[31m빨강\r\n둘째 줄\u202e")))
    sink.flush()
    [written] = (tmp_path / "alerts").iterdir()
    assert written.parent == tmp_path / "alerts" and ".." not in written.name
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    assert "제목[2J[31m빨강 둘째 줄" in out


def test_digest_files_write_html_and_text(tmp_path: Path, store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = settings(tmp_path, digest={"recipients": ["../a@b.example"]})
    mailer = digest_mailer(cfg, store)
    digest = mailer.build("../a@b.example", make_story().first_seen)
    ref = DigestFiles(tmp_path).deliver(digest, "newsradar@localhost")
    assert Path(ref).parent == tmp_path / "digests"
    assert sorted(p.suffix for p in (tmp_path / "digests").iterdir()) == [".html", ".txt"]
    assert digest.subject in capsys.readouterr().out


def test_alert_sink_picks_console_without_secrets(tmp_path: Path, store: Store, no_secrets: None) -> None:
    assert isinstance(alert_sink(settings(tmp_path), store), ConsoleAlerts)


def test_alert_sink_picks_slack_bot_then_webhook(
    tmp_path: Path, store: Store, no_secrets: None, monkeypatch: pytest.MonkeyPatch, slack_server: SlackStandIn
) -> None:
    cfg = settings(tmp_path, slack={"base_url": slack_server.base_url, "min_interval": 0})
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack_server.webhook_url)
    sink = alert_sink(cfg, store)
    assert isinstance(sink, SlackNotifier) and sink.mode == "webhook"
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    sink = alert_sink(cfg, store)
    assert isinstance(sink, SlackNotifier) and sink.mode == "bot"
    sink.add(update(make_story()))
    sink.flush()
    assert len(slack_server.messages("#news-radar")) == 1 and not slack_server.messages("#webhook-channel")


def test_digest_mailer_picks_smtp_when_host_is_set(tmp_path: Path, store: Store) -> None:
    with_host = digest_mailer(settings(tmp_path, smtp={"host": "127.0.0.1"}), store)
    without = digest_mailer(settings(tmp_path), store)
    assert isinstance(with_host._transport, SmtpTransport)
    assert isinstance(without._transport, DigestFiles)
