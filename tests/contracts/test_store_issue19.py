"""The state store's issue-19 methods on both stores: API quota counters and URL claims.

The same ``opener`` fixture as tests/contracts/test_store.py (SQLite file, or a database on a real
PostgreSQL server), so both implementations must agree.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from newsradar.store import StateStore
from tests.contracts import test_store as contract
from tests.contracts.test_store import T0, Opener

opener = contract.opener  # the same fixture (SQLite and PostgreSQL), used by name

_DAY = "2026-11-23"


def test_quota_spends_up_to_the_budget_and_never_over(opener: Opener):
    store = opener()
    assert store.quota_used("NAVER_CLIENT_ID", _DAY) == 0
    assert store.spend_quota("NAVER_CLIENT_ID", _DAY, 3, 5) == 3
    assert store.spend_quota("NAVER_CLIENT_ID", _DAY, 3, 5) is None  # 6 > 5: refused, nothing written
    assert store.quota_used("NAVER_CLIENT_ID", _DAY) == 3
    assert store.spend_quota("NAVER_CLIENT_ID", _DAY, 2, 5) == 5
    assert store.spend_quota("NAVER_CLIENT_ID", _DAY, 1, 5) is None
    # another day and another key have their own counters, and the count survives a reopen
    assert store.spend_quota("NAVER_CLIENT_ID", "2026-11-24", 1, 5) == 1
    assert store.spend_quota("OTHER_ID", _DAY, 1, 5) == 1
    store.close()
    assert opener().quota_used("NAVER_CLIENT_ID", _DAY) == 5


def test_concurrent_spenders_on_separate_connections_never_exceed_the_budget(opener: Opener):
    stores = [opener() for _ in range(4)]
    granted: list[int] = []
    lock = threading.Lock()

    def spend(store: StateStore) -> None:
        for _ in range(30):
            total = store.spend_quota("K", _DAY, 1, 50)
            if total is not None:
                with lock:
                    granted.append(total)

    threads = [threading.Thread(target=spend, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 50  # 120 tries, exactly the budget granted
    assert sorted(granted) == list(range(1, 51))  # every total handed out once: no call spent twice
    assert stores[0].quota_used("K", _DAY) == 50


def test_url_claims_make_two_entries_of_one_article_one_item(opener: Opener):
    store = opener()
    publisher, naver = "https://www.yna.co.kr/view/AKR1", "https://n.news.naver.com/mnews/article/001/1"
    # the outlet's feed entry comes first, under its own (guid) id
    assert store.claim_urls([("feed-id", [publisher])], T0) == ["feed-id"]
    # the Naver entry of the same article names both URLs: it takes the feed entry's id
    assert store.claim_urls([("naver-id", [publisher, naver])], T0) == ["feed-id"]
    # and a later entry reaching it only through the Naver URL does too, also after a reopen
    store.close()
    store = opener()
    assert store.claim_urls([("other", [naver]), ("fresh", ["https://x/1"]), ("bare", [])], T0) == [
        "feed-id", "fresh", "bare"]


def test_url_claims_of_one_call_are_decided_in_order(opener: Opener):
    store = opener()
    store.claim_urls([("early", ["https://x/9"])], T0 - timedelta(hours=1))
    claims = [("a", ["https://x/1", "https://x/2"]), ("b", ["https://x/2", "https://x/3"]), ("c", ["https://x/3"]),
              ("d", ["https://x/4", "https://x/4"]), ("e", ["https://x/5", "https://x/9"])]  # fmt: skip
    # b meets a's URL, c meets the URL b recorded for a; e's URL recorded earlier wins over its new one
    assert store.claim_urls(claims, T0) == ["a", "a", "a", "d", "early"]
    assert store.claim_urls([("f", ["https://x/5"])], T0) == ["early"]


def test_url_claims_are_pruned_with_the_seen_ids(opener: Opener):
    store = opener()
    store.claim_urls([("old", ["https://x/old"])], T0 - timedelta(days=31))
    store.claim_urls([("new", ["https://x/new"])], T0 - timedelta(days=29))
    store.spend_quota("K", "2026-11-01", 1, 10)
    store.spend_quota("K", "2026-11-23", 1, 10)
    store.prune_seen(timedelta(days=30), T0)
    assert store.claim_urls([("again", ["https://x/old"]), ("again2", ["https://x/new"])], T0) == ["again", "new"]
    assert store.quota_used("K", "2026-11-01") == 0 and store.quota_used("K", "2026-11-23") == 1


def test_concurrent_claims_of_one_url_agree_on_its_id(opener: Opener):
    stores = [opener() for _ in range(4)]
    results: dict[int, list[str]] = {}

    def claim(i: int, store: StateStore) -> None:
        results[i] = [store.claim_urls([(f"id-{i}-{k}", [f"https://x/{k}"])], T0)[0] for k in range(20)]

    threads = [threading.Thread(target=claim, args=(i, s)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(20):
        assert len({results[i][k] for i in results}) == 1  # every claimer got the same id for URL k


def test_poll_state_is_saved_replaced_and_survives_a_reopen(opener: Opener):
    from newsradar.store import PollState

    store = opener()
    assert store.poll_state("feed") is None
    store.save_poll_state("feed", PollState(600.0))
    store.save_poll_state("feed", PollState(300.0, 0.0025, 2, 1_800_000_000.5))
    store.save_poll_state("other", PollState(60.0, None, 0, None))
    store.close()
    store = opener()
    assert store.poll_state("feed") == PollState(300.0, 0.0025, 2, 1_800_000_000.5)
    assert store.poll_state("other") == PollState(60.0)
