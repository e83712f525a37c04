"""The daily digest over a real aiosmtpd: content, grouping, once per day across restarts, cut-off, failures."""

from __future__ import annotations

import re
import struct
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from newsradar.errors import PermanentError, TransientError
from newsradar.events import Story
from newsradar.store import Store
from notifiers import DigestMailer, digest_mailer
from tests.notifiers.stories import KST, OUTLETS, make_story, settings, spans
from tests.servers.smtp import PASSWORD, USERNAME, SmtpServer

RECIPIENT = "analyst@example.co.kr"
MORNING = datetime(2026, 6, 15, 8, 0, tzinfo=KST)
# Plain AUTH without TLS is fine on 127.0.0.1; aiosmtpd warns about it from its server thread.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

WATCHLIST = {"terms": [{"name": "이차전지"}, {"name": "특화단지"}, {"name": "CIBF"}, {"name": "포항"}]}



@pytest.fixture
def smtp_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_USERNAME", USERNAME)
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)


def mailer(tmp_path: Path, store: Store, server: SmtpServer | None, security: str = "none", **digest: Any) -> DigestMailer:
    smtp = {"host": server.host, "port": server.port, "security": security, "timeout": 5} if server else {}
    digest = {"recipients": [RECIPIENT], "sender": "newsradar@example.co.kr", **digest}
    cfg = settings(tmp_path, smtp=smtp, watchlist=WATCHLIST, digest=digest)
    return digest_mailer(cfg, store, ssl_context=server.client_context if server else None)


def save(store: Store, story: Story, when: datetime) -> None:
    store.save_story(story, f"{story.id}-a", when)


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def night_stories(store: Store) -> None:
    night = MORNING - timedelta(hours=10)
    save(store, make_story("s-one", title="이차전지 단신", outlets=OUTLETS[:1]), night)
    save(store, make_story("s-many", title="이차전지 대형 투자", outlets=OUTLETS[:4]), night)
    save(store, make_story("s-pohang", title="포항 소식 <script>alert(1)</script>", terms=("포항", "이차전지"),
                           outlets=OUTLETS[:2]), night)
    save(store, make_story("s-cibf", title="CIBF 개막", terms=("CIBF",), snippet="CIBF 2026 개막",
                           highlights=spans("CIBF 2026 개막", "CIBF")), night)


def test_digest_over_smtp_with_auth(tmp_path: Path, store: Store, smtp_server: SmtpServer, smtp_env: None) -> None:
    smtp_server.require_auth()
    night_stories(store)
    assert mailer(tmp_path, store, smtp_server).send_due(MORNING) == [RECIPIENT]
    [received] = smtp_server.messages
    assert received.authenticated_as == USERNAME and received.rcpt_tos == [RECIPIENT]
    message = received.message
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == "[newsradar] 2026-06-15 뉴스 다이제스트 (4건)"
    assert "\n" not in message["Subject"] and "\r" not in message["Subject"]
    assert b"=?utf-8?" in received.raw.lower()  # Korean subject RFC 2047-encoded, not raw 8-bit
    text, html = parts(message)
    # grouped by term in watchlist order; most-carried first; a multi-term story once, under its first term
    assert [m.group(1) for m in re.finditer(r"■ (\S+) \(", text)] == ["이차전지", "CIBF"]
    assert text.index("이차전지 대형 투자") < text.index("포항 소식") < text.index("이차전지 단신")
    assert text.count("포항 소식") == 1
    assert "4개 매체 보도: 연합뉴스, 뉴시스, 뉴스1, 경북일보" in text and "2026-06-14 17:17 KST" in text
    assert "【이차전지】" in text
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>이차전지</b>" in html and "<b>CIBF</b>" in html
    assert "포항 소식 <script>alert(1)</script>" in text  # the text part is not HTML: no entities there
    assert re.fullmatch(r"<digest\.2026-06-15\.[0-9a-f]{20}@example\.co\.kr>", message["Message-ID"])


def test_once_per_day_also_after_restart(tmp_path: Path, store: Store, smtp_server: SmtpServer) -> None:
    night_stories(store)
    assert mailer(tmp_path, store, smtp_server).send_due(MORNING) == [RECIPIENT]
    assert mailer(tmp_path, store, smtp_server).send_due(MORNING + timedelta(hours=3)) == []
    assert mailer(tmp_path, store, smtp_server).due(MORNING + timedelta(hours=15)) == []  # 23:00 same day
    save(store, make_story("s-next", title="다음 날 기사"), MORNING + timedelta(hours=5))
    assert mailer(tmp_path, store, smtp_server).send_due(MORNING + timedelta(days=1)) == [RECIPIENT]
    first, second = smtp_server.messages
    text = parts(second.message)[0]
    assert "다음 날 기사" in text and "이차전지 대형 투자" not in text  # only what is new since the last one
    assert first.message["Message-ID"] != second.message["Message-ID"]


def test_not_due_before_the_local_send_time(tmp_path: Path, store: Store, smtp_server: SmtpServer) -> None:
    m = mailer(tmp_path, store, smtp_server, time="09:30")
    assert m.due(MORNING) == []  # 08:00 KST
    assert m.due(MORNING + timedelta(minutes=90)) == [RECIPIENT]
    # 00:30 UTC is 09:30 KST: the local date and time decide, not UTC
    assert m.due(datetime(2026, 6, 15, 0, 30, tzinfo=UTC)) == [RECIPIENT]
    assert m.day(datetime(2026, 6, 14, 23, 0, tzinfo=UTC)) == "2026-06-15"


def test_refused_send_is_transient_and_does_not_move_the_cutoff(
    tmp_path: Path, store: Store, smtp_server: SmtpServer
) -> None:
    save(store, make_story("s-old"), MORNING - timedelta(days=1, hours=5))
    mailer(tmp_path, store, smtp_server).send_due(MORNING - timedelta(days=1))  # yesterday's, sent
    save(store, make_story("s-new", title="오늘의 새 기사"), MORNING - timedelta(hours=2))
    smtp_server.refuse_next(1, 451)
    with pytest.raises(TransientError) as caught:
        mailer(tmp_path, store, smtp_server).send_due(MORNING)
    assert "451" in str(caught.value)
    assert store.digest_state("2026-06-15", RECIPIENT) == "pending"
    save(store, make_story("s-later", title="재시도 전에 들어온 기사"), MORNING + timedelta(minutes=10))
    assert mailer(tmp_path, store, smtp_server).send_due(MORNING + timedelta(minutes=15)) == [RECIPIENT]
    assert mailer(tmp_path, store, smtp_server).send_due(MORNING + timedelta(minutes=20)) == []
    assert len(smtp_server.messages) == 2 and smtp_server.transactions == 3
    text = parts(smtp_server.messages[-1].message)[0]
    assert "오늘의 새 기사" in text and "재시도 전에 들어온 기사" in text and "s-old" not in text


def test_resend_after_crash_carries_the_same_message_id(tmp_path: Path, store: Store, smtp_server: SmtpServer) -> None:
    night_stories(store)
    mailer(tmp_path, store, smtp_server).send_due(MORNING)
    # crash between the server's 250 and our 'sent' write: the record still says pending
    store.record_digest("2026-06-15", RECIPIENT, "pending", cutoff=MORNING, sent_at=None)
    mailer(tmp_path, store, smtp_server).send_due(MORNING + timedelta(minutes=5))
    first, second = smtp_server.messages
    assert first.message["Message-ID"] == second.message["Message-ID"]


def test_wrong_password_is_permanent_and_never_shown(
    tmp_path: Path, store: Store, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    smtp_server.require_auth()
    monkeypatch.setenv("SMTP_USERNAME", USERNAME)
    monkeypatch.setenv("SMTP_PASSWORD", "wrong-pass-4711")
    with pytest.raises(PermanentError) as caught:
        mailer(tmp_path, store, smtp_server).send_due(MORNING)
    assert "login refused (535)" in str(caught.value)
    assert "wrong-pass-4711" not in str(caught.value) and "wrong-pass-4711" not in caplog.text
    assert smtp_server.auth_attempts and set(smtp_server.auth_attempts) == {(USERNAME, False)}
    assert not smtp_server.messages


def test_no_login_without_credentials(tmp_path: Path, store: Store, smtp_server: SmtpServer) -> None:
    mailer(tmp_path, store, smtp_server).send_due(MORNING)
    assert smtp_server.auth_attempts == [] and smtp_server.messages[0].authenticated_as is None


def test_permanent_refusal_is_permanent(tmp_path: Path, store: Store, smtp_server: SmtpServer) -> None:
    smtp_server.refuse_next(1, 554)
    with pytest.raises(PermanentError):
        mailer(tmp_path, store, smtp_server).send_due(MORNING)


def test_connection_refused_is_transient(tmp_path: Path, store: Store, closed_port: int) -> None:
    class Closed:
        host, port, client_context = "127.0.0.1", closed_port, None

    with pytest.raises(TransientError) as caught:
        mailer(tmp_path, store, Closed()).send_due(MORNING)  # type: ignore[arg-type]
    assert f"127.0.0.1:{closed_port}" in str(caught.value)
    assert store.last_digest_cutoff(RECIPIENT) is None


def test_starttls_with_auth(tmp_path: Path, store: Store, smtp_tls_server: SmtpServer, smtp_env: None) -> None:
    smtp_tls_server.require_auth()
    assert mailer(tmp_path, store, smtp_tls_server, security="starttls").send_due(MORNING) == [RECIPIENT]
    [received] = smtp_tls_server.messages
    assert received.tls and received.authenticated_as == USERNAME


def test_starttls_refuses_an_untrusted_certificate(
    tmp_path: Path, store: Store, smtp_tls_server: SmtpServer, smtp_env: None
) -> None:
    smtp_tls_server.client_context = None  # system CAs do not know the throwaway CA
    with pytest.raises(PermanentError) as caught:
        mailer(tmp_path, store, smtp_tls_server, security="starttls").send_due(MORNING)
    assert "TLS" in str(caught.value)
    assert not smtp_tls_server.messages


def test_implicit_tls(tmp_path: Path, store: Store, smtp_ssl_server: SmtpServer, smtp_env: None) -> None:
    assert mailer(tmp_path, store, smtp_ssl_server, security="ssl").send_due(MORNING) == [RECIPIENT]
    [received] = smtp_ssl_server.messages
    assert received.tls and received.authenticated_as == USERNAME


def test_no_header_injection(tmp_path: Path, store: Store, smtp_server: SmtpServer,
                             caplog: pytest.LogCaptureFixture) -> None:
    m = mailer(tmp_path, store, smtp_server, subject="다이제스트 {date}\r\nBcc: victim@evil.example",
               sender="newsradar@example.co.kr\r\nBcc: third@evil.example",
               recipients=[RECIPIENT + "\r\nBcc: other@evil.example", RECIPIENT])
    assert m.send_due(MORNING) == [RECIPIENT]
    assert "not a single email address" in caplog.text
    [received] = smtp_server.messages
    assert received.message["Bcc"] is None and received.rcpt_tos == [RECIPIENT]
    assert "\n" not in received.message["From"]
    assert received.message["Subject"] == "다이제스트 2026-06-15 Bcc: victim@evil.example"


def test_empty_digest_is_still_sent(tmp_path: Path, store: Store, smtp_server: SmtpServer) -> None:
    mailer(tmp_path, store, smtp_server).send_due(MORNING)
    text, html = parts(smtp_server.messages[0].message)
    assert "새로 포착된 기사가 없습니다" in text and "새로 포착된 기사가 없습니다" in html
    assert smtp_server.messages[0].message["Subject"].endswith("(0건)")


def test_bad_subject_template_falls_back(tmp_path: Path, store: Store, smtp_server: SmtpServer,
                                         caplog: pytest.LogCaptureFixture) -> None:
    mailer(tmp_path, store, smtp_server, subject="{date} {oops}").send_due(MORNING)
    assert smtp_server.messages[0].message["Subject"] == "[newsradar] 2026-06-15 뉴스 다이제스트 (0건)"
    assert "digest.subject" in caplog.text


def test_preview_sends_and_records_nothing(tmp_path: Path, store: Store, smtp_server: SmtpServer) -> None:
    night_stories(store)
    digest = mailer(tmp_path, store, smtp_server).preview(MORNING, tmp_path / "out" / "preview.html")
    assert digest.chart_png and "cid:trend-chart@newsradar" in digest.html  # the chart, linked as a file here
    written = (tmp_path / "out" / "preview.html").read_text(encoding="utf-8")
    assert written == digest.html.replace("cid:trend-chart@newsradar", "preview.png")
    assert (tmp_path / "out" / "preview.png").read_bytes() == digest.chart_png
    assert len(digest.stories) == 4 and [g.term for g in digest.groups] == ["이차전지", "CIBF"]
    assert not smtp_server.messages and store.digest_state("2026-06-15", RECIPIENT) is None


def test_without_smtp_digests_are_files_once_per_day(
    tmp_path: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    night_stories(store)
    assert mailer(tmp_path, store, None).send_due(MORNING) == [RECIPIENT]
    html = tmp_path / "digests" / f"2026-06-15--{RECIPIENT}.html"
    text = tmp_path / "digests" / f"2026-06-15--{RECIPIENT}.txt"
    assert "&lt;script&gt;" in html.read_text(encoding="utf-8")
    assert "이차전지 대형 투자" in text.read_text(encoding="utf-8")
    assert "이차전지 대형 투자" in capsys.readouterr().out
    assert mailer(tmp_path, store, None).send_due(MORNING + timedelta(hours=1)) == []
    assert store.digest_state("2026-06-15", RECIPIENT) == "sent"


def test_digest_links_local_files_but_not_unsafe_urls(tmp_path: Path, store: Store) -> None:
    """An offline source's page (the demo's file:// pages) is linked; javascript: and file://host are not."""
    night = MORNING - timedelta(hours=10)
    local = "file:///srv/newsradar/demo/city/press-1203.html"
    save(store, make_story("s-local", title="데모 시청 보도자료", url=local), night)
    save(store, make_story("s-js", title="스크립트 링크", url="javascript:alert(1)"), night)
    save(store, make_story("s-smb", title="원격 파일 링크", url="file://attacker.example/share/a.html"), night)
    digest = mailer(tmp_path, store, None).build(RECIPIENT, MORNING)
    assert f"   {local}\n" in digest.text and f'<a href="{local}"' in digest.html
    for text in (digest.text, digest.html):
        assert "javascript:" not in text and "attacker.example" not in text


def two_weeks_of_news(store: Store) -> dict[str, int]:
    """Stories on several of the last 14 days (some days busier), under two terms; stories per term."""
    counts = {"이차전지": 0, "포항": 0}
    for back, (battery, pohang) in enumerate([(3, 1), (0, 2), (5, 0), (1, 1), (0, 0), (2, 4), (1, 0), (6, 2)]):
        day = MORNING - timedelta(days=back, hours=3)
        for i in range(battery):
            save(store, make_story(f"b{back}-{i}", title=f"이차전지 소식 {back}-{i}", url=f"https://n.example.kr/b{back}{i}",
                                   outlets=OUTLETS[: 1 + i % 3], published=day), day)
        for i in range(pohang):
            save(store, make_story(f"p{back}-{i}", title=f"포항 소식 {back}-{i}", url=f"https://n.example.kr/p{back}{i}",
                                   terms=("포항",), published=day), day)
        counts["이차전지"] += battery
        counts["포항"] += pohang
    return counts


def test_the_email_carries_the_trend_chart_inline_and_its_figures_as_text(
    tmp_path: Path, store: Store, smtp_server: SmtpServer
) -> None:
    counts = two_weeks_of_news(store)
    assert mailer(tmp_path, store, smtp_server).send_due(MORNING) == [RECIPIENT]
    message = smtp_server.messages[0].message
    text, html = parts(message)
    images = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0]["Content-ID"] == "<trend-chart@newsradar>"
    assert images[0].get_content_disposition() == "inline"
    png = images[0].get_content()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (880, 506)  # 8 x 4.6 in at 110 dpi
    related = next(p for p in message.walk() if p.get_content_type() == "multipart/related")
    assert [p.get_content_type() for p in related.iter_parts()] == ["text/html", "image/png"]
    assert '<img src="cid:trend-chart@newsradar"' in html
    assert "최근 14일 추이 (06-02~06-15" in text  # the plain part: the same figures in words
    for term, total in counts.items():
        assert re.search(rf"{term}: [▁▂▃▄▅▆▇█]{{14}}  합계 {total}건", text), text
