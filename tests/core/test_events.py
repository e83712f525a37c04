"""The event model: versioned JSON round trips, aware times, forward compatibility."""

import json
from datetime import datetime, timezone

import pytest

from newsradar.events import Article, Match, RawItem, Story, StoryUpdate, decode, encode, stable_id

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def _article() -> Article:
    return Article(id="a1", source="s", outlet="경북데모일보", url="https://x/1", title="포항시 이차전지",
                   text="본문", published_at=NOW, matches=(Match("포항", "포항시", 0, 2, 100.0, "포항"),))


def test_round_trip_every_event_type():
    raw = RawItem(id="r", source="s", outlet="o", url="u", canonical_url="u", title="t", published_at=NOW)
    story = Story(id="s-a1", lead=_article(), first_seen=NOW, outlets=("a", "b"), copies=2, terms=("포항",),
                  snippet="포항시 이차전지", highlights=((0, 2),), rules=("r1",))
    merged = StoryUpdate(story=story, article_id="a2", is_new=False, absorbed=("s-b1", "s-c1"))
    for event in (raw, _article(), story, StoryUpdate(story=story, article_id="a1", is_new=False), merged):
        assert decode(encode(event)) == event


def test_wire_format_is_versioned_and_readable():
    envelope = json.loads(encode(_article()))
    assert envelope["v"] == 1 and envelope["type"] == "Article"
    assert envelope["data"]["title"] == "포항시 이차전지"  # UTF-8, not \\u escapes


def test_unknown_version_and_type_are_rejected():
    with pytest.raises(ValueError, match="version"):
        decode(json.dumps({"v": 99, "type": "Article", "data": {}}))
    with pytest.raises(ValueError, match="unknown event type"):
        decode(json.dumps({"v": 1, "type": "Nope", "data": {}}))


def test_unknown_fields_from_a_newer_writer_are_ignored():
    envelope = json.loads(encode(_article()))
    envelope["data"]["added_later"] = 1
    assert decode(json.dumps(envelope)) == _article()


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        RawItem(id="r", source="s", outlet="o", url="u", canonical_url="u", title="t",
                published_at=datetime(2026, 1, 1))


def test_document_and_terms():
    article = _article()
    assert article.document == "포항시 이차전지\n본문"
    assert article.terms == ("포항",)
    assert stable_id("a") == stable_id("a") != stable_id("b")
