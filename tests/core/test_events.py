"""The event model: versioned JSON round trips, aware times, forward compatibility."""

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np
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


def test_wire_format_of_times_tuples_and_nested_events_is_what_other_versions_read():
    seoul = timezone(timedelta(hours=9))
    lead = Article(id="a1", source="s", outlet="o", url="u", title="제목", text="",
                   published_at=datetime(2026, 11, 23, 18, 0, 0, 123456, tzinfo=seoul),
                   matches=(Match("포항", "포항시", 0, 2, 87.5, "포항"),))  # fmt: skip
    story = Story(id="s-a1", lead=lead, first_seen=NOW, outlets=("a", "b"), highlights=((0, 2), (5, 7)))
    data = json.loads(encode(StoryUpdate(story=story, article_id="a1", is_new=True)))["data"]
    assert data["story"]["first_seen"] == "2026-11-23T09:00:00+00:00"  # ISO 8601 with the offset, as isoformat()
    assert data["story"]["lead"]["published_at"] == "2026-11-23T18:00:00.123456+09:00"
    assert data["story"]["outlets"] == ["a", "b"] and data["story"]["highlights"] == [[0, 2], [5, 7]]
    assert data["story"]["lead"]["matches"][0]["score"] == 87.5 and data["absorbed"] == []
    assert decode(json.dumps({"v": 1, "type": "StoryUpdate", "data": data}, ensure_ascii=False)).story == story
    from_numpy = Match("포항", "포항", 0, 2, np.float64(92.5), "포항")  # a score computed with numpy
    assert decode(encode(replace(lead, matches=(from_numpy,)))).matches[0].score == 92.5


def test_text_no_utf8_can_hold_is_a_value_error_naming_the_event():
    with pytest.raises(ValueError, match="RawItem 'r'"):
        encode(RawItem(id="r", source="s", outlet="o", url="u", canonical_url="u", title="half \ud83d an emoji"))
    with pytest.raises(ValueError, match="not an event"):
        decode(b"[1, 2]")


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
