"""A full or read-only state database under the whole pipeline: a clear error, and no silent loss.

The disk fills (SQLite's max_page_count on the store's own connection, after saturating every table, so that
any new row fails exactly as on a full disk) or turns read-only (query_only) at three moments: before the sweep,
after the items are collected, and after the stories are grouped. Whatever the moment, the failure is logged at
ERROR naming the state store, and once the disk is fixed a rerun delivers every alert exactly once.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from newsradar.daemon import Daemon
from newsradar.errors import NewsradarError
from newsradar.store import Store
from tests.reliability.harness import healthy_source, logged, pipeline_settings, run_once, tally
from tests.reliability.news import HEALTHY, RELEVANT, XML, rss
from tests.reliability.scorecard import Card
from tests.servers.http import HttpServer
from tests.servers.slack import SlackStandIn

STORIES = [RELEVANT[0], RELEVANT[1]]
KEYS = [HEALTHY.key, *(e.key for e in STORIES)]
# One tiny row per table: inserted until the table's last page is full.
_FILLERS = {
    "seen": "INSERT INTO seen VALUES ('~', ?, 0)",
    "validators": "INSERT INTO validators VALUES ('~', ?, NULL, NULL)",
    "stories": "INSERT INTO stories VALUES (?, '', 0, NULL, 0, 0)",
    "story_articles": "INSERT INTO story_articles VALUES ('~', ?)",
    "alerts": "INSERT INTO alerts VALUES ('~', ?, NULL, 0, '', 0)",
    "digests": "INSERT INTO digests VALUES ('~', ?, '', NULL, 0)",
}


def _connection(store: Store) -> sqlite3.Connection:
    return store._conn  # noqa: SLF001 - the failure must hit the store's own connection, as a real disk would


def fill_disk(store: Store) -> None:
    """No room for one more row: cap the file at its current size, then fill the free space of every table."""
    conn = _connection(store)
    conn.execute("PRAGMA synchronous=OFF")  # filling is not what we test; keep it quick
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    for sql in _FILLERS.values():
        for n in range(100_000):
            try:
                conn.execute(sql, (f"~{n}",))
            except sqlite3.OperationalError as exc:
                assert "full" in str(exc), exc
                break
    conn.execute("PRAGMA synchronous=FULL")


def read_only(store: Store) -> None:
    _connection(store).execute("PRAGMA query_only = 1")


BREAK: dict[str, Callable[[Store], None]] = {"full": fill_disk, "read-only": read_only}
PROBLEM = {"full": "database or disk is full", "read-only": "readonly database"}


def _sweep(daemon: Daemon, when: str, breaks: Callable[[Store], None]) -> None:
    """One sweep with the state DB breaking at ``when``: before polling, after collecting, before notifying."""
    try:
        if when == "before-the-sweep":
            breaks(daemon.store)
        daemon.poll_all()
        if when == "after-collecting":
            breaks(daemon.store)
        processor, grouper, notifier = daemon.runners
        processor.drain()
        grouper.drain()
        if when == "before-notifying":
            breaks(daemon.store)
        notifier.drain()
    except NewsradarError as exc:  # a stage may stop on it; what matters is what is logged and what is lost
        logging.getLogger(__name__).info("sweep stopped: %s", exc)
    finally:
        daemon.close()


@pytest.mark.parametrize("how", list(BREAK))
@pytest.mark.parametrize("when", ["before-the-sweep", "after-collecting", "before-notifying"])
def test_broken_state_db_gives_a_clear_error_and_a_rerun_delivers_once(
    when: str, how: str, tmp_path: Path, http_server: HttpServer, slack_server: SlackStandIn, slack_env: None,
    caplog: pytest.LogCaptureFixture, scorecard: Card,
) -> None:
    http_server.add("/news.xml", rss(STORIES).encode(), headers=XML)
    sources = [{"name": "regional", "url": http_server.url("/news.xml")}, healthy_source(http_server)]
    settings = pipeline_settings(tmp_path, slack_server, sources)

    _sweep(Daemon(settings), when, BREAK[how])
    during = tally(slack_server, KEYS)
    errors = logged(caplog, "state store", "write failed", PROBLEM[how], level=logging.ERROR)
    run_once(settings)  # the disk is fixed (a fresh connection has neither limit) and the daemon restarts
    result = tally(slack_server, KEYS)
    scorecard.record(
        f"state DB {how} {when.replace('-', ' ')}",
        "a clear ERROR naming the state store; nothing acknowledged that was not done; a rerun delivers once",
        f"ERROR logged: {len(errors)} line(s); during: {during.describe()}; after the fix: {result.describe()}",
        lost=result.lost, doubled=result.doubled,
    )
    assert errors, logged(caplog, "state store")
    assert result.counts == {k: 1 for k in KEYS} and result.noise == 0, result
