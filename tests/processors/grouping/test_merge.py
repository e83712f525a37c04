"""Stories begun apart that turn out to be one event are merged: in the grouper, on disk, and in the
story records and alerts of the grouping stage.

The scenario (written for these tests): a ministry designates vocational schools in two regions.
Three outlets report the school in one region, two others the schools in the other region in words
that share nothing rare with the first three, so the join model rightly starts two stories; then a
report naming all three schools shows they are one announcement. A background of unrelated
headlines (Zipf-distributed pseudo-words) gives the window realistic word frequencies.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from newsradar.events import Article, RawItem
from newsradar.pipeline import ExtractMatchStage, GroupStage
from newsradar.store import Store
from processors.grouping import Grouper, decision
from tests.reliability.harness import pipeline_settings

T0 = datetime(2026, 6, 16, 1, 0, tzinfo=timezone.utc)
_SYLLABLES = [chr(c) for c in range(0xAC00, 0xD7A4, 37)]


def background(n: int = 300, seed: int = 3) -> list[Article]:
    """Unrelated headlines over the three days before the scenario."""
    rng = random.Random(seed)
    vocab = ["".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 3)))) for _ in range(3000)]
    return [
        Article(id=f"bg{i}", source="test", outlet=f"매체{i % 9}", url=f"https://bg.example/{i}",
                title=" ".join(vocab[int(rng.paretovariate(0.7)) % len(vocab)] for _ in range(7)), text="",
                published_at=T0 - timedelta(days=3) + timedelta(minutes=14 * i))  # fmt: skip
        for i in range(n)
    ]


def _article(article_id: str, minutes: int, title: str, outlet: str, text: str = "") -> Article:
    return Article(id=article_id, source="test", outlet=outlet, url=f"https://news.example/{article_id}",
                   title=title, text=text, published_at=T0 + timedelta(minutes=minutes))  # fmt: skip


NORTH = [
    _article("a1", 0, "교육부, 군산기계공고 '이차전지 마이스터고' 지정…2028년 개교", "가신문"),
    _article("a2", 20, "군산기계공고, 전북 첫 이차전지 마이스터고로 선정", "나일보"),
    _article("a3", 40, "군산기계공고 '이차전지 마이스터고' 최종 지정…교육부 400억 지원", "다뉴스"),
]
SOUTH = [
    _article("b1", 60, "여수공고·순천공고, AI·에너지 인재 양성학교로 새 출발", "라경제"),
    _article("b2", 90, "여수·순천공고 'AI 에너지 인재' 키운다", "마방송"),
]
BRIDGE = _article("c1", 110, "교육부, 군산기계공고·여수공고·순천공고 마이스터고 지정", "바타임스",
                  "군산기계공고는 이차전지, 여수공고와 순천공고는 AI 에너지 인재를 키운다")  # fmt: skip


def _primed(path: Path | None = None) -> Grouper:
    grouper = Grouper(path=path)
    for article in background():
        grouper.assign(article)
    return grouper


def test_two_angles_of_one_announcement_start_apart_and_merge_when_a_report_names_both() -> None:
    grouper = _primed()
    north = {grouper.assign(a) for a in NORTH}
    south = {grouper.assign(a) for a in SOUTH}
    assert north == {"s-a1"} and south == {"s-b1"}  # no rare word in common: two stories so far
    placed = grouper.place(BRIDGE)
    assert placed.story_id == "s-a1"  # the oldest story survives, so its alert stays the story's alert
    assert placed.absorbed == ("s-b1",)
    assert grouper.resolve("s-b1") == "s-a1"
    assert {grouper.assign(a) for a in NORTH + SOUTH} == {"s-a1"}  # every copy is in one story now
    later = _article("b3", 150, "여수공고·순천공고 'AI 에너지 인재' 양성 본격화", "사저널")
    assert grouper.assign(later) == "s-a1"


def test_an_eviction_after_a_merge_drops_the_absorbed_story_and_keeps_the_survivor() -> None:
    grouper = _primed()
    for a in NORTH + SOUTH + [BRIDGE]:
        grouper.assign(a)
    late = _article("d1", int(timedelta(days=4, hours=12).total_seconds() // 60), "포스텍, 리튬 음극재 신공정 공개", "아신문")
    grouper.assign(late)  # the window now starts 2.5 days before the scenario: the oldest background is out
    assert grouper.evict() > 0
    live = [a for a in background() if a.published_at >= late.published_at - grouper.window]
    # Redeliveries answer from the renumbered index: the merged story is still one story, under its old id.
    assert {grouper.assign(a) for a in NORTH + SOUTH + [BRIDGE]} == {"s-a1"}
    expected = {grouper.assign(a) for a in live} | {"s-a1", "s-d1"}
    assert grouper.stats()["stories"] == len(expected)  # s-b1, absorbed and empty, is gone
    assert grouper.assign(_article("b4", 160, "여수·순천공고 AI 에너지 인재 양성학교 출범", "자일보")) == "s-a1"


def test_without_the_bridging_report_the_two_angles_stay_apart() -> None:
    grouper = _primed()
    stories = [grouper.assign(a) for a in NORTH + SOUTH]
    assert set(stories) == {"s-a1", "s-b1"}
    assert grouper.resolve("s-b1") == "s-b1"


def test_stories_that_began_hours_apart_are_not_merged() -> None:
    grouper = _primed()
    late = [replace(a, published_at=a.published_at + timedelta(hours=decision.MERGE_HOURS + 1)) for a in SOUTH]
    for a in NORTH + late:
        grouper.assign(a)
    bridge = replace(BRIDGE, published_at=late[-1].published_at + timedelta(minutes=10))
    assert grouper.place(bridge).absorbed == ()


def test_a_young_index_merges_nothing() -> None:
    """With few articles in the window every word looks rare, so no story-level evidence is trusted."""
    grouper = Grouper()
    for a in NORTH + SOUTH:
        grouper.assign(a)
    assert grouper.place(BRIDGE).absorbed == ()


def test_a_merge_survives_restart_and_a_redelivery_reports_it_again(tmp_path: Path) -> None:
    path = tmp_path / "grouping.sqlite"
    grouper = _primed(path)
    for a in NORTH + SOUTH:
        grouper.assign(a)
    first = grouper.place(BRIDGE)
    grouper.close()
    reopened = Grouper(path=path)
    assert reopened.place(BRIDGE) == first  # the bus redelivered the bridging article
    assert {reopened.assign(a) for a in NORTH + SOUTH} == {"s-a1"}
    assert reopened.resolve("s-b1") == "s-a1"
    reopened.close()


# --- the grouping stage: story records and alerts are folded together -------------------------------


@pytest.fixture()
def stage(tmp_path: Path):
    settings = pipeline_settings(tmp_path, None, [])
    store = Store(tmp_path / "state.sqlite")
    group = GroupStage.from_settings(settings, store)
    extract = ExtractMatchStage.from_settings(settings)
    for article in background():
        group.process(article)
    group.flush()  # the runner flushes each delivered batch: one transaction
    yield group, extract, store
    group.close()
    store.close()


def _matched(extract: ExtractMatchStage, article: Article) -> Article:
    """The article as the extract/match stage publishes it (with its watchlist matches)."""
    raw = RawItem(id=article.id, source=article.source, outlet=article.outlet, url=article.url,
                  canonical_url=article.url, title=article.title, body=article.text,
                  published_at=article.published_at, fetched_at=article.published_at)  # fmt: skip
    return extract.article(raw)


def test_grouping_stage_folds_the_absorbed_story_and_hands_its_alert_over(stage) -> None:
    group, extract, store = stage
    for article in NORTH + SOUTH:
        group.process(_matched(extract, article))
    group.flush()
    # The south story was alerted on its own channel; the north one on the shared channel only.
    store.record_alert("s-b1", "#south", "sent", "C2/2.0", 2)
    store.record_alert("s-a1", "#all", "sent", "C1/1.0", 3)
    store.record_alert("s-b1", "#all", "sent", "C1/1.5", 2)
    (_, key, update), = group.process(_matched(extract, BRIDGE))
    assert store.story("s-b1") is not None  # nothing written before the flush
    group.flush()
    assert key == "s-a1" and update.story.id == "s-a1" and update.absorbed == ("s-b1",)
    assert update.story.copies == 6 and update.story.carried_by == 6
    assert update.story.lead.id == "a1"
    assert store.story("s-b1") is None
    assert store.story("s-a1").copies == 6
    assert all(store.story_has_article("s-a1", a.id) for a in NORTH + SOUTH + [BRIDGE])
    assert store.alert("s-a1", "#south") == ("sent", "C2/2.0", 2)  # handed over: edited, not posted again
    assert store.alert("s-a1", "#all") == ("sent", "C1/1.0", 3)  # the survivor's own alert stands
    assert store.alert("s-b1", "#all") == ("sent", "C1/1.5", 2)  # both had one here: left as it was
    # A redelivery of the bridging article changes nothing and says the same.
    (_, _, again), = group.process(_matched(extract, BRIDGE))
    group.flush()
    assert again.story.copies == 6 and again.absorbed == ("s-b1",)


# --- round-ups: they name several events in a few words, so they neither join nor bridge stories ---


def test_a_round_up_naming_the_event_does_not_join_its_story_but_its_own_copy_does() -> None:
    grouper = _primed()
    for a in NORTH:
        grouper.assign(a)
    plain = _article("r0", 50, "군산기계공고 이차전지 마이스터고 지정", "아일보")
    roundup = _article("r1", 55, "[교육 브리핑] 군산기계공고 이차전지 마이스터고 지정 외", "자신문")
    same_roundup = replace(roundup, id="r2", title=roundup.title + " - 자신문", source="google")
    assert grouper.assign(plain) == "s-a1"  # the control: without the round-up mark it is a copy
    assert grouper.assign(roundup) == "s-r1"
    assert grouper.assign(same_roundup) == "s-r1"  # the same round-up through another feed


def test_a_round_up_naming_both_angles_does_not_merge_them() -> None:
    grouper = _primed()
    for a in NORTH + SOUTH:
        grouper.assign(a)
    roundup = replace(BRIDGE, id="r1", title="[오늘의 교육 소식] " + BRIDGE.title)
    assert grouper.place(roundup).absorbed == ()
    assert grouper.place(BRIDGE).absorbed == ("s-b1",)  # the report itself does


def test_a_round_ups_story_stays_closed_to_reports_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "grouping.sqlite"
    grouper = _primed(path)
    roundup = _article("r1", 0, "[교육 브리핑] 군산기계공고 이차전지 마이스터고 지정 외", "자신문")
    assert grouper.assign(roundup) == "s-r1"
    grouper.close()
    reopened = Grouper(path=path)
    assert reopened.assign(NORTH[0]) == "s-a1"  # the report starts its own story, not the round-up's
    reopened.close()
