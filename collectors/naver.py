"""Naver News search API sources (``kind: naver``): one query, newest first, paged until known items appear.

``GET https://openapi.naver.com/v1/search/news.json?query=…&display=100&start=1&sort=date`` with the
headers ``X-Naver-Client-Id`` / ``X-Naver-Client-Secret`` (from the environment variables that
``naver.client_id_env`` / ``naver.client_secret_env`` name; never logged). ``sort=date`` is always sent: the
API's default is relevance, which would bury new articles. A poll reads page after page (``start`` = 1,
101, 201 …, at most ``max_pages`` and never past the API's start limit of 1000) while every item on the
page is new; the first page holding an item we already published ends it.

Each result becomes one RawItem:

- ``title`` and ``description`` lose the ``<b>`` highlighting and their HTML entities;
- ``originallink`` (the publisher's URL) is the canonical URL and the id; ``link`` (the Naver News copy,
  ``n.news.naver.com``, or the same URL when Naver hosts no copy) is claimed as an alias in the state store
  together with it, so the Naver result and the publisher's own feed entry of one article are one item,
  whichever arrives first (``StateStore.claim_urls``);
- the outlet comes from the publisher's host (collectors/outlets.py);
- ``pubDate`` is kept as the published time, but it is when Naver *received* the article, not when the
  outlet published it (usually minutes later, sometimes hours for regional outlets).

The quota (25,000 calls a day per client id, shared by every query and every Naver search type) is
rationed twice: the scheduler paces the naver sources so that their first pages use at most
``(1 - paging_share)`` of ``naver.daily_budget`` (``scheduled_interval``), and every call is first counted
in the state store (``StateStore.spend_quota``, atomic across hosts): when the day's budget is spent, a poll
stops (TransientError until midnight Korean time). Errors: HTTP 429 / errorCode 010 and 5xx / SE99 are
transient; authentication (401, 024), permission (403), unknown key (020) and bad requests (SE01–SE06)
are permanent, each with a message saying what to fix.
"""

from __future__ import annotations

import html
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from collectors.batch import Batch
from collectors.fetch import Fetcher, FetchResult, parse_retry_after
from collectors.outlets import outlet_for_url
from collectors.urls import canonical_url, item_id, looks_like_url
from newsradar.errors import ContentError, PermanentError, TransientError
from newsradar.events import RawItem
from newsradar.settings import NaverSettings, Settings, SourceSettings, secret
from newsradar.store import StateStore

logger = logging.getLogger(__name__)

KST = ZoneInfo("Asia/Seoul")
MAX_START = 1000  # the API refuses start > 1000
API_DAILY_LIMIT = 25_000
_HIGHLIGHT = re.compile(r"</?b>", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
_SURROGATE = re.compile("[\ud800-\udfff]")

# errorCode -> (transient?, what it means and what to do)
_ERRORS: dict[str, tuple[bool, str]] = {
    "SE01": (False, "incorrect query request (잘못된 쿼리요청): check the source's query"),
    "SE02": (False, "invalid display value (부적절한 display 값): display must be 1-100"),
    "SE03": (False, "invalid start value (부적절한 start 값): start must be 1-1000"),
    "SE04": (False, "invalid sort value (부적절한 sort 값)"),
    "SE05": (False, "invalid search API (존재하지 않는 검색 api): check the source's url"),
    "SE06": (False, "malformed encoding (잘못된 형식의 인코딩): the query must be UTF-8"),
    "SE99": (True, "Naver search system error (시스템 에러)"),
    "010": (True, "request limit exceeded (사용 한도 초과): the client id's daily quota or per-second rate"),
    "011": (False, "incorrect query request (잘못된 쿼리요청)"),
    "020": (False, "unregistered key (등록되지 않은 키): check the Client ID"),
    "024": (False, "authentication failed (인증 실패): check the Client ID and Client Secret"),
}


def naver_day(now: datetime) -> str:
    """The quota's calendar day: Naver resets the count at midnight Korean time."""
    return now.astimezone(KST).date().isoformat()


def seconds_to_reset(now: datetime) -> float:
    """Seconds until the next midnight in Korea, when the daily quota starts again."""
    local = now.astimezone(KST)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - local).total_seconds()


def scheduled_interval(settings: Settings, source: SourceSettings) -> float:
    """The poll interval the scheduler uses for ``source``: its own for non-naver sources; for naver sources
    at least the spacing at which all enabled naver sources' first pages fit the scheduled share of the
    daily budget (so 20 queries on a 20,000 budget with a quarter kept for paging poll every 115 s at most).
    """
    if source.kind != "naver":
        return source.interval
    return max(source.interval, budget_interval(settings))


def budget_interval(settings: Settings) -> float:
    """The shortest interval at which every enabled naver source's first page fits the scheduled share of
    the daily budget (``86400 × queries / (daily_budget × (1 - paging_share))`` seconds)."""
    naver = settings.naver
    queries = sum(1 for s in settings.sources if s.kind == "naver" and s.enabled) or 1
    return 86400 * queries / (naver.daily_budget * (1 - naver.paging_share))


def budget_report(settings: Settings, store: StateStore, now: datetime) -> dict[str, Any]:
    """The Naver budget as health reports it: today's calls against the budget, and what the schedule uses."""
    naver = settings.naver
    sources = [s for s in settings.sources if s.kind == "naver" and s.enabled]
    scheduled = sum(86400 / scheduled_interval(settings, s) for s in sources)
    day = naver_day(now)
    used = store.quota_used(naver.client_id_env, day)
    return {
        "day": day,
        "calls_today": used,
        "daily_budget": naver.daily_budget,
        "api_daily_limit": API_DAILY_LIMIT,
        "queries": len(sources),
        "scheduled_calls_per_day": round(scheduled),
        "budget_left": naver.daily_budget - used,
    }


@dataclass(frozen=True)
class _Result:
    """One search result, as the API gives it."""

    title: str
    originallink: str
    link: str
    description: str
    pub_date: str


class NaverCollector:
    """Polls one Naver News search query."""

    def __init__(self, source: SourceSettings, fetcher: Fetcher, store: StateStore, naver: NaverSettings) -> None:
        if source.kind != "naver" or not source.query:
            raise ValueError(f"{source.name}: a naver source needs kind 'naver' and a query")
        self.source = source
        self._fetcher = fetcher
        self._store = store
        self._naver = naver

    @classmethod
    def from_settings(cls, source: SourceSettings, fetcher: Fetcher, store: StateStore,
                      settings: Settings) -> NaverCollector:  # fmt: skip
        return cls(source, fetcher, store, settings.naver)

    def collect(self, now: datetime) -> Batch:
        """One poll; called by the runner on the source's (paced) schedule.

        Raises PermanentError when the credentials are missing or refused or the request is invalid,
        TransientError when Naver is failing or over its limit, or the day's budget is spent.
        """
        src = self.source
        batch = Batch(src.name)
        headers = self._credentials()
        fresh: list[tuple[str, str, _Result]] = []  # (id, canonical URL, result), newest first
        ids: set[str] = set()
        start = 1
        for page in range(src.max_pages):
            try:
                self._spend(now, first=page == 0, batch=batch)
            except _BudgetSpent:
                break
            results = self._page(start, headers)
            known = False
            linked: list[tuple[_Result, str, str]] = []  # (result, canonical URL, id)
            for result in results:
                batch.received += 1
                target = result.originallink or result.link
                if not looks_like_url(target):
                    batch.drop("no_link")
                    batch.error(f"{src.name}: result {result.title[:60]!r} has no usable link; skipped")
                    continue
                canonical = canonical_url(target)
                linked.append((result, canonical, item_id(None, canonical)))
            batch.ask_seen(self._store, [ident for *_, ident in linked])
            for result, canonical, ident in linked:
                if ident in ids:
                    batch.drop("duplicate")
                    continue
                ids.add(ident)
                if batch.seen_before(self._store, ident):
                    known = True
                    continue
                fresh.append((ident, canonical, result))
            start += src.display
            if known or len(results) < src.display or start > MAX_START:
                break
        else:
            if fresh:
                batch.flag("pages_capped")
                logger.info("%s: every result of %d pages was new; older ones are left (max_pages)",
                            src.name, src.max_pages)
        batch.items = self._items(fresh, batch, now)
        return batch

    def _credentials(self) -> dict[str, str]:
        naver = self._naver
        client_id, client_secret = secret(naver.client_id_env), secret(naver.client_secret_env)
        if not client_id or not client_secret:
            missing = [f"${e}" for e, v in ((naver.client_id_env, client_id), (naver.client_secret_env, client_secret))
                       if not v]  # fmt: skip
            raise PermanentError(
                f"{self.source.name}: Naver API credentials missing: {' and '.join(missing)} not set "
                "(see README, 'Naver News search API')"
            )
        return {"X-Naver-Client-Id": client_id, "X-Naver-Client-Secret": client_secret}

    def _spend(self, now: datetime, first: bool, batch: Batch) -> None:
        """Count one call against today's budget, or stop: raise on the first page, end paging after."""
        naver = self._naver
        day = naver_day(now)
        if self._store.spend_quota(naver.client_id_env, day, 1, naver.daily_budget) is not None:
            return
        message = (f"{self.source.name}: Naver daily budget of {naver.daily_budget} calls spent for {day} "
                   f"(naver.daily_budget); next call after midnight Korean time")  # fmt: skip
        if first:
            raise TransientError(message, retry_after=seconds_to_reset(now))
        batch.error(message + "; paging stopped")
        raise _BudgetSpent

    def _page(self, start: int, headers: dict[str, str]) -> list[_Result]:
        src = self.source
        query = urlencode({"query": src.query, "display": src.display, "start": start, "sort": "date"})
        url = f"{src.url}{'&' if '?' in src.url else '?'}{query}"
        result = self._fetcher.get(url, source=src.name, headers=headers, error_bodies=True)
        if result.status != 200:
            raise self._api_error(result)
        try:
            data = json.loads(result.body.decode("utf-8"))
            items = data["items"]
            return [
                _Result(self._text(i, "title"), self._text(i, "originallink").strip(), self._text(i, "link").strip(),
                        self._text(i, "description"), self._text(i, "pubDate"))
                for i in items
            ]  # fmt: skip
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ContentError(f"{src.name}: {src.url}: not a Naver search response ({type(exc).__name__}: {exc})") \
                from exc  # fmt: skip

    def _text(self, item: dict[str, Any], key: str) -> str:
        """A string of a result. JSON may escape half of a surrogate pair ("\\ud83d": an emoji cut in two), which
        no UTF-8 text can hold: it becomes U+FFFD, logged, rather than an item the bus cannot carry."""
        text = str(item.get(key) or "")
        if not _SURROGATE.search(text):
            return text
        logger.warning("%s: Naver search result %r: %s holds a lone surrogate escape; replaced with U+FFFD",
                       self.source.name, item.get("link") or item.get("originallink"), key)  # fmt: skip
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")

    def _api_error(self, result: FetchResult) -> TransientError | PermanentError:
        """Our error for a non-200 answer, from the HTTP status and the body's errorCode/errorMessage."""
        where = f"{self.source.name}: Naver search API"
        code, message = "", ""
        try:
            body = json.loads(result.body.decode("utf-8"))
            code, message = str(body.get("errorCode") or ""), str(body.get("errorMessage") or "")
        except (UnicodeDecodeError, ValueError, AttributeError):
            pass
        transient, meaning = _ERRORS.get(code, (result.status == 429 or result.status >= 500, ""))
        if result.status == 401 and not meaning:
            meaning = "authentication failed: check the Client ID and Client Secret"
        if result.status == 403 and not meaning:
            meaning = "no permission: add the 검색 (Search) API to the application on developers.naver.com"
        detail = f"HTTP {result.status}" + (f", errorCode {code}" if code else "")
        text = f"{where}: {meaning or message or 'request failed'} ({detail}" + (
            f": {message})" if message and meaning else ")")
        if result.status == 429 or transient:
            retry_after = parse_retry_after(result.headers.get("retry-after"), 3600)
            hint = f"; retry after {retry_after:.0f}s" if retry_after is not None else "; will retry"
            return TransientError(text + hint, retry_after=retry_after)
        return PermanentError(text)

    def _items(self, fresh: list[tuple[str, str, _Result]], batch: Batch, now: datetime) -> list[RawItem]:
        """RawItems of the new results, oldest first, each under the id its URLs are claimed by."""
        if not fresh:
            return []
        claims = [(ident, _urls(canonical, result)) for ident, canonical, result in fresh]
        winners = self._store.claim_urls(claims, now)
        items: list[RawItem] = []
        for (ident, canonical, result), winner in zip(fresh, winners, strict=True):
            if winner != ident:
                batch.settled_ids.append(ident)  # remembered, so the next poll does not claim it again
                if batch.seen_before(self._store, winner):
                    continue
            published = _pub_date(result.pub_date)
            if published is None:
                batch.flag("undated")
            elif published > now + timedelta(days=1):
                batch.error(f"{self.source.name}: {canonical} dated {published.isoformat()}, in the future; "
                            "using the fetch time")  # fmt: skip
                published = now
            title = strip_markup(result.title)
            items.append(
                RawItem(
                    id=winner,
                    source=self.source.name,
                    outlet=self.source.outlet or outlet_for_url(canonical, self.source.name),
                    url=result.originallink or result.link,
                    canonical_url=canonical,
                    title=title,
                    body=strip_markup(result.description),
                    published_at=published,
                    fetched_at=now,
                    guid=result.link or None,  # the Naver News URL, kept beside the publisher's
                )
            )
        items.reverse()  # the API gives newest first; the bus gets them in publication order
        return items


class _BudgetSpent(Exception):
    """Internal: the budget ran out after the first page; the pages already read are kept."""


def _urls(canonical: str, result: _Result) -> list[str]:
    urls = [canonical]
    if result.link and looks_like_url(result.link):
        alias = canonical_url(result.link)
        if alias != canonical:
            urls.append(alias)
    return urls


def strip_markup(text: str) -> str:
    """Text of a Naver ``title``/``description``: the ``<b>`` highlighting removed *without* a space (the
    API wraps the query inside words: ``<b>포항</b>의``), then the entities unescaped (``&quot;`` ``&lt;``)."""
    return _SPACE.sub(" ", html.unescape(_HIGHLIGHT.sub("", text))).strip()


def _pub_date(value: str) -> datetime | None:
    """``pubDate`` ('Mon, 07 Dec 2026 14:03:00 +0900'): when Naver received the article."""
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=KST)
