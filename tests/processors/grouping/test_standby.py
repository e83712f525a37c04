"""A stand-by grouper takes over from the shared state store and makes the same decisions.

Two grouping stages share one PostgreSQL database, as two processor hosts would. The active one groups the
first part of a stream and is lost (never closed, its memory gone); the stand-by claims the index, rebuilds
it from the recorded decisions, and groups the rest, including redeliveries of the last batch the lost one
had written. Every article ends in the story a single grouper that saw the whole stream gives it, and the
story records (copies, outlets) agree with it too.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from newsradar.events import Article
from newsradar.pipeline import GroupStage
from newsradar.store.postgres import PostgresStore
from tests.processors.grouping.test_merge import BRIDGE, NORTH, SOUTH, background
from tests.reliability.harness import pipeline_settings
from tests.servers.postgres import PostgresServer


def _stream() -> list[Article]:
    """Background headlines, then the scenario of test_merge (two stories begun apart, then one bridging
    report), each scenario article twice under another id as a second outlet would carry it."""
    copies = [replace(a, id=f"{a.id}-copy", outlet=f"{a.outlet}2") for a in NORTH + SOUTH]
    return background(240) + NORTH + SOUTH + copies + [BRIDGE]


def _group(stage: GroupStage, articles: list[Article], batch: int = 25) -> dict[str, str]:
    """Feed ``articles`` in batches as the runner would (process each, then flush); article -> story."""
    placed: dict[str, str] = {}
    for start in range(0, len(articles), batch):
        for article in articles[start:start + batch]:
            stage.process(article)
            placed[article.id] = stage.grouper.assign(article)  # asked again: a redelivery, same answer
        stage.flush()
    return placed


def test_a_stand_by_takes_over_from_postgres_and_decides_as_one_grouper_would(tmp_path: Path,
                                                                               postgres_server: PostgresServer):
    settings = pipeline_settings(tmp_path, None, [])
    stream = _stream()
    cut = 260  # the active grouper is lost after this many articles (inside the scenario)

    alone_store = PostgresStore(postgres_server.new_database(), pool_size=2)  # a single grouper, rows of its own
    alone = GroupStage.from_settings(settings, alone_store)
    expected = _group(alone, stream)

    dsn = postgres_server.new_database()
    shared = [PostgresStore(dsn, pool_size=2), PostgresStore(dsn, pool_size=2)]
    active = GroupStage.from_settings(settings, shared[0])
    standby = GroupStage.from_settings(settings, shared[1])  # started with the active one: its index is empty
    got = _group(active, stream[:cut])
    got.update(_group(standby, stream[cut - 25:]))  # the lost grouper's last batch comes back too

    final = {a.id: standby.grouper.resolve(got[a.id]) for a in stream}
    want = {a.id: alone.grouper.resolve(expected[a.id]) for a in stream}
    assert final == want
    scenario = {want[a.id] for a in NORTH + SOUTH + [BRIDGE]}
    assert len(scenario) == 1  # the merge happened on the stand-by, as it did alone
    [story_id] = scenario
    mine, theirs = shared[1].story(story_id), alone_store.story(story_id)
    assert mine is not None and theirs is not None
    assert (mine.copies, sorted(mine.outlets)) == (theirs.copies, sorted(theirs.outlets)) == (11, sorted(
        {a.outlet for a in NORTH + SOUTH + [BRIDGE]} | {f"{a.outlet}2" for a in NORTH + SOUTH}))
    for store in (*shared, alone_store):
        store.close()

