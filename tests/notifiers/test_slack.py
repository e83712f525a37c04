"""SlackNotifier against the real Slack stand-in on 127.0.0.1: post once, edit on more outlets, never twice."""

from __future__ import annotations

import itertools
import logging
import re
import time
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from newsradar.errors import PermanentError, TransientError
from newsradar.settings import Settings
from newsradar.store import StateStore, Store
from notifiers.slack import SlackNotifier
from tests.notifiers.conftest import race
from tests.notifiers.stories import OUTLETS, make_story, settings, update
from tests.servers.slack import TOKEN, SlackStandIn


def slack_settings(tmp_path: Path, server: SlackStandIn, **slack: Any) -> Settings:
    section = {"base_url": server.base_url, "min_interval": 0, "timeout": 2.0, **slack}
    watchlist = {"terms": [{"name": "이차전지"}, {"name": "포항"}, {"name": "CIBF"}],
                 "rules": [{"name": "포항 배터리", "all": ["포항", "이차전지"], "channel": "#alerts"}]}
    return settings(tmp_path, slack=section, watchlist=watchlist)



def bot(tmp_path: Path, server: SlackStandIn, store: Store, token: str = TOKEN, **slack: Any) -> SlackNotifier:
    return SlackNotifier(slack_settings(tmp_path, server, **slack), store, token=token)


def send(notifier: SlackNotifier, *stories: Any) -> None:
    for story in stories:
        notifier.add(update(story))
    notifier.flush()


def story_ids(server: SlackStandIn, channel: str) -> list[str]:
    return [(m.metadata or {}).get("event_payload", {}).get("story_id") for m in server.messages(channel)]


def context_of(message: Any) -> str:
    return message.blocks[-1]["elements"][0]["text"]


def test_new_story_posts_once_with_metadata(tmp_path: Path, slack_server: SlackStandIn, store: Store) -> None:
    notifier = bot(tmp_path, slack_server, store)
    story = make_story()
    send(notifier, story)
    [message] = slack_server.messages("#news-radar")
    assert message.metadata == {"event_type": "newsradar_story", "event_payload": {"story_id": story.id}}
    assert "연합뉴스 · 2026-06-14 17:17 KST" in message.blocks[1]["elements"][0]["text"]
    state, ref, outlets = store.alert(story.id, "#news-radar")  # type: ignore[misc]
    assert (state, outlets) == ("sent", 1)
    assert ref == f"{slack_server.channel_id('#news-radar')}/{message.ts}"
    send(notifier, story)
    send(bot(tmp_path, slack_server, store), story)  # after a restart too
    assert len(slack_server.posts) == 1 and not slack_server.updates


def test_more_outlets_edit_the_same_message(tmp_path: Path, slack_server: SlackStandIn, store: Store) -> None:
    notifier = bot(tmp_path, slack_server, store)
    send(notifier, make_story(outlets=OUTLETS[:1]))
    # A burst of copies between two flushes: coalesced into one edit showing the latest state.
    for n in (2, 3, 4):
        notifier.add(update(make_story(outlets=OUTLETS[:n])))
    notifier.flush()
    [message] = slack_server.messages("#news-radar")
    assert len(slack_server.posts) == 1 and len(slack_server.updates) == 1
    assert context_of(message).startswith("4개 매체 보도 (carried by 4 outlets): 연합뉴스, 뉴시스, 뉴스1, 경북일보")
    assert "1개 매체 보도" in message.edits[0][1][-1]["elements"][0]["text"]
    assert "(4개 매체)" in message.text
    # the same state again (redelivery) edits nothing; an older state arriving late neither
    send(notifier, make_story(outlets=OUTLETS[:4]), make_story(outlets=OUTLETS[:2]))
    assert len(slack_server.updates) == 1
    assert store.alert("story0001", "#news-radar")[2] == 4  # type: ignore[index]


def test_merged_story_edits_the_absorbed_storys_message(tmp_path: Path, slack_server: SlackStandIn, store: Store) -> None:
    """Two stories found to be one event: the alert already posted is edited, no second one is posted."""
    notifier = bot(tmp_path, slack_server, store)
    south = make_story("s-south", outlets=OUTLETS[:2])
    send(notifier, south)  # alerted on its own
    survivor = make_story("s-north", outlets=OUTLETS[2:] + OUTLETS[:2])  # after the fold: 5 outlets
    store.absorb_story(survivor, "s-south", survivor.first_seen)  # what the grouping stage does on a merge
    notifier.add(update(survivor))
    notifier.flush()
    [message] = slack_server.messages("#news-radar")
    assert len(slack_server.posts) == 1 and len(slack_server.updates) == 1
    assert context_of(message).startswith("5개 매체 보도")
    assert story_ids(slack_server, "#news-radar") == ["s-north"]  # its metadata now names the survivor
    assert store.alert("s-north", "#news-radar")[2] == 5  # type: ignore[index]


def test_timeout_after_slack_posted_is_reconciled_not_duplicated(
    tmp_path: Path, slack_server: SlackStandIn, store: Store
) -> None:
    story = make_story()
    slack_server.delay_next(1, 1.5)  # Slack posts, but the answer comes after our 0.5 s timeout
    with pytest.raises(TransientError):
        send(bot(tmp_path, slack_server, store, timeout=0.5), story)
    assert store.alert(story.id, "#news-radar")[0] == "pending"  # type: ignore[index]
    restarted = bot(tmp_path, slack_server, store)  # fresh process: knows no channel ids
    send(restarted, story)
    [message] = slack_server.messages("#news-radar")
    assert len(slack_server.posts) == 1
    assert store.alert(story.id, "#news-radar")[:2] == (  # type: ignore[index]
        "sent", f"{slack_server.channel_id('#news-radar')}/{message.ts}")
    history = [c for c in slack_server.calls if c.method == "conversations.history"]
    assert history and history[0].params["include_all_metadata"] in ("1", "true", True)
    # and the adopted message is the one later edits go to
    send(restarted, make_story(outlets=OUTLETS[:2]))
    assert len(slack_server.updates) == 1 and "2개 매체" in context_of(slack_server.messages("#news-radar")[0])


def test_pending_without_a_message_posts(tmp_path: Path, slack_server: SlackStandIn, store: Store) -> None:
    story = make_story()
    store.record_alert(story.id, "#news-radar", "pending", None, 1)  # crashed before the post left
    slack_server.messages("#news-radar")  # the channel exists, empty
    send(bot(tmp_path, slack_server, store), story)
    assert len(slack_server.posts) == 1 and len(slack_server.messages("#news-radar")) == 1


def test_429_is_transient_with_retry_after_then_exactly_one(
    tmp_path: Path, slack_server: SlackStandIn, store: Store
) -> None:
    notifier = bot(tmp_path, slack_server, store)
    slack_server.fail_next(1, "429", retry_after=7)
    with pytest.raises(TransientError) as caught:
        send(notifier, make_story())
    assert caught.value.retry_after == 7.0
    assert not slack_server.posts
    notifier.flush()  # the caller retries: the update is still buffered
    notifier.flush()
    assert len(slack_server.posts) == 1 and len(slack_server.messages("#news-radar")) == 1


@pytest.mark.parametrize("kind", ["500", "ratelimited"])
def test_server_errors_and_ratelimited_are_transient(
    kind: str, tmp_path: Path, slack_server: SlackStandIn, store: Store
) -> None:
    notifier = bot(tmp_path, slack_server, store)
    slack_server.fail_next(1, kind)
    with pytest.raises(TransientError):
        send(notifier, make_story())
    notifier.flush()
    assert len(slack_server.messages("#news-radar")) == 1


def test_invalid_auth_is_permanent_and_never_shows_the_token(
    tmp_path: Path, slack_server: SlackStandIn, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "xoxb-wrong-9d8f7e6a5b4c"
    with pytest.raises(PermanentError) as caught:
        send(bot(tmp_path, slack_server, store, token=secret), make_story())
    assert "invalid_auth" in str(caught.value) and "$SLACK_BOT_TOKEN" in str(caught.value)
    assert secret not in str(caught.value) and secret not in caplog.text
    assert not slack_server.posts


def test_channel_not_found_fails_that_channel_only(
    tmp_path: Path, slack_server: SlackStandIn, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = bot(tmp_path, slack_server, store, routes=[{"terms": ["포항"], "channel": "#gone"}])
    slack_server.fail_next(1, "channel_not_found")
    with pytest.raises(PermanentError) as caught:
        send(notifier, make_story("s-pohang", terms=("포항",)), make_story("s-battery"))
    assert "channel_not_found" in str(caught.value) and "#gone" in str(caught.value)
    assert "channel_not_found" in caplog.text
    assert story_ids(slack_server, "#news-radar") == ["s-battery"]
    notifier.flush()  # the failed delivery is not retried forever from the buffer
    assert len(slack_server.posts) == 1


def test_network_timeout_is_transient(tmp_path: Path, slack_server: SlackStandIn, store: Store) -> None:
    slack_server.delay_next(1, 1.0)
    with pytest.raises(TransientError) as caught:
        send(bot(tmp_path, slack_server, store, timeout=0.3), make_story())
    assert "network error" in str(caught.value)


def test_unreachable_slack_is_transient(tmp_path: Path, store: Store, closed_port: int) -> None:
    class Closed:
        base_url = f"http://127.0.0.1:{closed_port}/api/"

    notifier = SlackNotifier(slack_settings(tmp_path, Closed(), timeout=1.0), store, token=TOKEN)  # type: ignore[arg-type]
    with pytest.raises(TransientError):
        send(notifier, make_story())


def test_routing_posts_once_per_channel(tmp_path: Path, slack_server: SlackStandIn, store: Store) -> None:
    notifier = bot(tmp_path, slack_server, store, routes=[{"terms": ["포항"], "channel": "#pohang"}])
    story = make_story(terms=("이차전지", "포항"), rules=("포항 배터리",))
    send(notifier, story, make_story("s-cibf", terms=("CIBF",)))
    assert len(slack_server.messages("#pohang")) == 1 and len(slack_server.messages("#alerts")) == 1
    assert story_ids(slack_server, "#news-radar") == ["s-cibf"]
    assert notifier.channels(story) == ["#pohang", "#alerts"]


def test_posts_to_one_channel_are_spaced_by_min_interval(
    tmp_path: Path, slack_server: SlackStandIn, store: Store
) -> None:
    send(bot(tmp_path, slack_server, store, min_interval=0.3),
         make_story("s1"), make_story("s2"), make_story("s3"))
    arrivals = [c.at for c in slack_server.posts]
    assert len(arrivals) == 3 and arrivals == sorted(arrivals)
    assert all(b - a >= 0.3 for a, b in itertools.pairwise(arrivals))


def test_deleted_message_is_not_reposted(
    tmp_path: Path, slack_server: SlackStandIn, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = bot(tmp_path, slack_server, store)
    send(notifier, make_story())
    slack_server.store.clear()  # someone deleted the alert in Slack
    send(notifier, make_story(outlets=OUTLETS[:3]))
    assert "message_not_found" in caplog.text
    assert len(slack_server.posts) == 1 and store.alert("story0001", "#news-radar")[2] == 3  # type: ignore[index]


def test_hostile_story_is_accepted_by_slack_and_inert(tmp_path: Path, slack_server: SlackStandIn, store: Store) -> None:
    title = "<!channel> <@U123> <https://evil.example|클릭> *굵게*\r\n\u202e" + "가" * 5000
    send(bot(tmp_path, slack_server, store), make_story(title=title, outlets=("<!here>",) * 3))
    [message] = slack_server.messages("#news-radar")  # the stand-in validates Block Kit limits
    texts = [message.text] + [b["text"]["text"] for b in message.blocks if "text" in b]
    texts += [e["text"] for b in message.blocks for e in b.get("elements", [])]
    for text in texts:
        assert all(t.startswith("<https://news.example.co.kr/") for t in re.findall(r"<[^>]*>", text))
        assert "\n" not in text and "\u202e" not in text
    assert len(message.text) <= 4000 and all(len(t) <= 3000 for t in texts)


def test_webhook_posts_once_and_cannot_edit(
    tmp_path: Path, slack_server: SlackStandIn, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    notifier = SlackNotifier(slack_settings(tmp_path, slack_server), store, webhook_url=slack_server.webhook_url)
    assert notifier.mode == "webhook"
    send(notifier, make_story())
    send(notifier, make_story(outlets=OUTLETS[:3]))
    [message] = slack_server.messages("#webhook-channel")
    assert "1개 매체 보도" in context_of(message) and not slack_server.updates
    assert store.alert("story0001", "webhook")[0] == "sent"  # type: ignore[index]
    assert "webhooksecret0000" not in caplog.text  # slack-sdk logs the URL at DEBUG; we redact it


def test_webhook_429_is_transient_then_exactly_one(tmp_path: Path, slack_server: SlackStandIn, store: Store) -> None:
    notifier = SlackNotifier(slack_settings(tmp_path, slack_server), store, webhook_url=slack_server.webhook_url)
    slack_server.fail_next(1, "429", retry_after=3)
    with pytest.raises(TransientError) as caught:
        send(notifier, make_story())
    assert caught.value.retry_after == 3.0
    notifier.flush()
    assert len(slack_server.messages("#webhook-channel")) == 1


def test_webhook_revoked_is_permanent_without_the_url(tmp_path: Path, slack_server: SlackStandIn, store: Store) -> None:
    notifier = SlackNotifier(slack_settings(tmp_path, slack_server), store, webhook_url=slack_server.webhook_url)
    slack_server.fail_next(1, "invalid_auth")
    with pytest.raises(PermanentError) as caught:
        send(notifier, make_story())
    assert "$SLACK_WEBHOOK_URL" in str(caught.value) and "webhooksecret0000" not in str(caught.value)


def test_a_batch_stopped_by_a_failure_sends_each_first_alert_once_on_the_retry(
    tmp_path: Path, slack_server: SlackStandIn, store: Store
) -> None:
    """Five first alerts in one flush, and Slack fails the third: the two before it are sent, the third stays
    'pending' (a failed call may still have posted: its channel's history decides), the two after it were never
    tried and are claimed afresh. The retried flush posts the other three, each once; no lease is left behind."""
    notifier = bot(tmp_path, slack_server, store)
    stories = [make_story(f"s{i}") for i in range(5)]
    slack_server.fail_next(1, "500", after=2)
    with pytest.raises(TransientError):
        send(notifier, *stories)
    states = [(store.alert(s.id, "#news-radar") or ("none",))[0] for s in stories]
    assert states == ["sent", "sent", "pending", "none", "none"]
    notifier.flush()  # the runner's retry: the undelivered stories are still buffered
    assert story_ids(slack_server, "#news-radar") == [s.id for s in stories] and len(slack_server.posts) == 5
    assert len([c for c in slack_server.calls if c.method == "conversations.history"]) == 1  # the uncertain one
    now = datetime.now(timezone.utc)
    assert all(store.take_lease(f"alert:{s.id}:#news-radar", "another", now + timedelta(minutes=5), now)
               for s in stories)  # fmt: skip
    notifier.flush()
    assert len(slack_server.posts) == 5


def test_two_notifiers_flushing_the_same_first_alerts_post_each_once(
    tmp_path: Path, two_stores: tuple[StateStore, StateStore], slack_server: SlackStandIn
) -> None:
    """Two notifiers (hosts) on one state, each with the same 45 first alerts (three batches): every alert is
    posted once. One that meets the other's lease gets a TransientError and retries, as the runner does."""
    notifiers = [SlackNotifier(slack_settings(tmp_path, slack_server), s, token=TOKEN) for s in two_stores]
    stories = [make_story(f"s{i:02d}") for i in range(45)]
    for notifier in notifiers:
        for story in stories:
            notifier.add(update(story))

    def flush(notifier: SlackNotifier) -> int:
        for attempt in range(100):
            try:
                notifier.flush()
                return attempt
            except TransientError:
                time.sleep(0.02)
        raise AssertionError("never flushed")

    race(*(partial(flush, n) for n in notifiers))
    assert sorted(story_ids(slack_server, "#news-radar")) == [s.id for s in stories]
    assert len(slack_server.posts) == 45
    assert all(two_stores[1].alert(s.id, "#news-radar")[0] == "sent" for s in stories)  # type: ignore[index]


def test_a_batch_of_first_alerts_holds_what_min_interval_lets_out_in_a_few_seconds(
    tmp_path: Path, slack_server: SlackStandIn, store: Store
) -> None:
    """A crash mid-batch leaves its untried alerts 'pending' (each then looked up in the channel's history), so at
    Slack's own pace a batch is a few seconds of posts, not POST_BATCH of them."""
    sizes = {interval: bot(tmp_path, slack_server, store, min_interval=interval)._batch_size()
             for interval in (0, 0.1, 1.0, 10.0)}  # fmt: skip
    assert sizes == {0: 20, 0.1: 20, 1.0: 5, 10.0: 1}
