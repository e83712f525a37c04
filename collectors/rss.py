"""RSS and Atom sources: conditional GET, our own charset decoding, feedparser on bytes, new entries out.

feedparser never fetches anything itself: it gets a byte stream we fetched and re-encoded as UTF-8 (its
declaration rewritten, so it does not guess the charset again). XML that declares entities is refused
before parsing (billion laughs, external entities). Broken XML is logged and whatever parsed still flows.
"""

from __future__ import annotations

import calendar
import dataclasses
import io
import logging
import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import feedparser

from collectors.batch import Batch, fetch_if_changed
from collectors.charset import decode_bytes, xml_as_utf8
from collectors.fetch import Fetcher, FetchResult
from collectors.html import fetch_article, plain_text
from collectors.urls import canonical_url, host_of, item_id, looks_like_url
from newsradar.dates import parse_time
from newsradar.errors import ContentError, NewsradarError
from newsradar.events import RawItem
from newsradar.settings import SourceSettings
from newsradar.store import StateStore

logger = logging.getLogger(__name__)

MAX_ITEMS_PER_POLL = 500
FUTURE_SLACK = timedelta(days=1)
_ENTITY_DECL = re.compile(rb"<!\s*ENTITY", re.IGNORECASE)
_ENTITY_DECL_TEXT = re.compile(r"<!\s*ENTITY", re.IGNORECASE)
_AGGREGATOR_HOSTS = ("news.google.", "news.naver.", "news.daum.")
# Values feedparser resolves against the document's URL, when not absolute: a tag's href, and the text of a link, an
# Atom id or a guid that is a permalink (not isPermaLink="false"). Two patterns, not one alternation: each runs
# ten times faster on its own.
_RELATIVE_HREF = re.compile(r"""<[^>]*\bhref\s*=\s*["']\s*(?![a-z][a-z0-9+.-]*:)""", re.IGNORECASE)
_RELATIVE_TEXT = re.compile(
    r"""<(?:\w+:)?(?:link|id|guid(?![^>]*ispermalink\s*=\s*["']false))\b[^>]*>"""
    r"""\s*(?:<!\[CDATA\[\s*)?(?![a-z][a-z0-9+.-]*:)[^<\s]""",
    re.IGNORECASE,
)


def _needs_document_url(text: str) -> bool:
    """Whether feedparser's answer depends on the document's URL: an xml:base, or a relative reference."""
    return "xml:base" in text or bool(_RELATIVE_TEXT.search(text) or _RELATIVE_HREF.search(text))


def _entry_time(entry: Any, zone: ZoneInfo) -> datetime | None:
    # dict.get: FeedParserDict.get("updated") falls back to "published" with a DeprecationWarning.
    for key in ("published", "updated", "created"):
        when = parse_time(dict.get(entry, key), zone)
        if when is not None:
            return when
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = dict.get(entry, key)  # feedparser's own parse (e.g. Korean 오후 formats), already in UTC
        if parsed:
            return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    return None


def _body(entry: Any) -> str:
    contents = [c.get("value", "") for c in entry.get("content") or []]
    longest = max(contents, key=len, default="")
    summary = entry.get("summary") or ""
    return longest if len(longest) > len(summary) else summary


def _headline_and_outlet(
    source: SourceSettings, entry: Any, title: str, feed_title: str, aggregator: bool
) -> tuple[str, str]:
    """(headline, outlet) of an entry. Google News titles read "headline - outlet": the suffix is cut from
    the headline shown to people and names the outlet, when the entry's ``<source>`` names the same outlet
    (Google News feeds, wherever they are served from) or the feed is an aggregator's (news.google.* …).
    A configured ``outlet`` wins; then ``<source>``, the suffix, the feed's title."""
    entry_source = plain_text((entry.get("source") or {}).get("title"))
    suffix = ""
    if " - " in title:
        head, tail = (part.strip() for part in title.rsplit(" - ", 1))
        if head and (tail == entry_source or (aggregator and 0 < len(tail) <= 40)):
            title, suffix = head, tail
    return title, source.outlet or entry_source or suffix or feed_title


def _outlet(source: SourceSettings, entry: Any, title: str, feed_title: str, aggregator: bool) -> str:
    """The outlet of an entry (see ``_headline_and_outlet``)."""
    return _headline_and_outlet(source, entry, title, feed_title, aggregator)[1]


# One feed is parsed at a time in a process. feedparser is Python through and through: under the GIL, sweep
# threads parsing side by side take as long as one after the other, and all their feeds come out at the end
# together. One after the other, the first feed's items are published, and on their way down the pipeline,
# while the next is parsed. Fetches still overlap: a poll takes its turn once its answer is in.
_PARSING = threading.Lock()


class RssCollector:
    """Polls one RSS/Atom feed."""

    def __init__(
        self, source: SourceSettings, fetcher: Fetcher, store: StateStore, max_items: int = MAX_ITEMS_PER_POLL
    ):
        self.source = source
        self._fetcher = fetcher
        self._store = store
        self._max_items = max_items
        self._zone = ZoneInfo(source.timezone)

    @classmethod
    def from_settings(cls, source: SourceSettings, fetcher: Fetcher, store: StateStore) -> RssCollector:
        return cls(source, fetcher, store)

    def collect(self, now: datetime) -> Batch:
        """One poll; called by the runner on the source's schedule.

        Raises TransientError / PermanentError when the feed cannot be fetched and ContentError when it
        cannot be used at all (declares XML entities, is not a feed); problems with single entries are
        logged and counted in the batch.
        """
        src = self.source
        batch = Batch(src.name)
        result = fetch_if_changed(self._fetcher, self._store, batch, src.url)
        if result is None:
            return batch
        with _PARSING:
            parsed = self._parse(result, batch)
            feed_title = plain_text(parsed.feed.get("title")) or host_of(result.url)
            aggregator = any(h in host_of(result.url) for h in _AGGREGATOR_HOSTS)
            items = self._new_items(parsed.entries, batch, result.url, feed_title, aggregator, now)
        over_cap = len(items) > self._max_items
        if over_cap:
            items.sort(key=lambda i: i.published_at or datetime.min.replace(tzinfo=UTC), reverse=True)
            batch.drop("over_cap", len(items) - self._max_items)
            batch.error(f"{src.name}: {len(items)} new entries, keeping the {self._max_items} newest; "
                        "the rest follow in the next polls")
            items = items[: self._max_items]
        items.sort(key=lambda i: i.published_at or now)
        if src.fetch_articles:
            items = [self._with_page(item, batch) for item in items]
        batch.items = items
        if not over_cap:
            # Over the cap, keep the old validators: an unchanged feed would answer 304 and the rest never come.
            batch.validators[src.url] = (result.etag, result.last_modified)
        return batch

    def _parse(self, result: FetchResult, batch: Batch) -> Any:
        src = self.source
        where = f"{src.name}: {result.url}"
        if _ENTITY_DECL.search(result.body):
            raise self._refuse(where)
        decoded = decode_bytes(
            result.body, http_charset=result.declared_charset, kind="xml", forced=src.encoding, where=where
        )
        if decoded.problem:
            batch.error(decoded.problem, logged=True)  # counted for the source; charset.py logged it
        if _ENTITY_DECL_TEXT.search(decoded.text):  # the same check for UTF-16 and other wide encodings
            raise self._refuse(where)
        headers = {"content-type": "application/xml; charset=utf-8"}
        if _needs_document_url(decoded.text):
            # Only then does the document's URL change what feedparser returns. Without it feedparser skips a
            # urljoin per element (a quarter of its time on the bench's feeds); entry links are joined in
            # _new_items either way.
            headers["content-location"] = result.url
        parsed = feedparser.parse(
            io.BytesIO(xml_as_utf8(decoded.text)),  # a stream: feedparser must not treat bytes as a path
            response_headers=headers,
            # Entry links are resolved by us (urljoin on the feed's URL) and relative links inside entry HTML
            # are never followed: feedparser's URI rewriting of every content element is work for nothing.
            resolve_relative_uris=False,
            sanitize_html=True,  # entry HTML becomes text through plain_text, which keeps script contents
        )
        problem = f"{type(parsed.bozo_exception).__name__}: {parsed.bozo_exception}" if parsed.bozo else ""
        if not parsed.entries and not parsed.get("version"):  # no "version" key at all for an empty body
            detail = "empty body" if not result.body.strip() else problem or f"content type {result.content_type}"
            message = f"{where}: not an RSS/Atom feed ({detail})"
            logger.error("%s", message)
            raise ContentError(message)
        if parsed.bozo:
            batch.error(
                f"{where}: feed is not well-formed ({problem}); keeping the {len(parsed.entries)} "
                f"entries that parsed"
            )
        return parsed

    @staticmethod
    def _refuse(where: str) -> ContentError:
        message = (
            f"{where}: XML declares entities (<!ENTITY>); refused as a billion-laughs/external-entity risk"
        )
        logger.error("%s", message)
        return ContentError(message)

    def _new_items(
        self,
        entries: list[Any],
        batch: Batch,
        base_url: str,
        feed_title: str,
        aggregator: bool,
        now: datetime,
    ) -> list[RawItem]:
        src = self.source
        items: list[RawItem] = []
        ids: set[str] = set()
        repeats: list[str] = []
        undated: list[str] = []
        linked: list[tuple[Any, str | None, str, str, str]] = []  # (entry, guid, url, canonical URL, id)
        for entry in entries:
            batch.received += 1
            guid = (entry.get("id") or "").strip() or None
            link = (entry.get("link") or "").strip() or (guid if guid and looks_like_url(guid) else "")
            if not link:
                batch.drop("no_link")
                batch.error(f"{src.name}: entry {guid or entry.get('title', '')!r} has no link; skipped")
                continue
            url = urljoin(base_url, link)
            canonical = canonical_url(url)
            linked.append((entry, guid, url, canonical, item_id(guid, canonical)))
        batch.ask_seen(self._store, [ident for *_, ident in linked])
        for entry, guid, url, canonical, ident in linked:
            if ident in ids:
                batch.drop("duplicate")
                repeats.append(guid or url)
                continue
            ids.add(ident)
            if batch.seen_before(self._store, ident):
                continue
            body = _body(entry)
            title, outlet = _headline_and_outlet(
                src, entry, plain_text(entry.get("title")) or plain_text(body)[:100], feed_title, aggregator
            )
            published = self._published(entry, now, url, batch)
            if published is None:
                undated.append(url)
            items.append(
                RawItem(
                    id=ident,
                    source=src.name,
                    outlet=outlet or src.name,
                    url=url,
                    canonical_url=canonical,
                    title=title,
                    body=body,
                    published_at=published,
                    fetched_at=now,
                    guid=guid,
                )
            )
        self._report(batch, repeats, undated)
        return self._claimed(items, batch, now)

    def _claimed(self, items: list[RawItem], batch: Batch, now: datetime) -> list[RawItem]:
        """Items whose id comes from a non-URL guid take the id their URL is already claimed by (e.g. by a
        Naver search result of the same article), and claim it otherwise: one item whichever came first.
        Ids that are the URL's own already agree with every other source, so only these need a claim."""
        by_guid = [item for item in items if item.id != item_id(None, item.canonical_url)]
        if not by_guid:
            return items
        winners = dict(zip((i.id for i in by_guid),
                           self._store.claim_urls([(i.id, [i.canonical_url]) for i in by_guid], now), strict=True))
        kept: list[RawItem] = []
        for item in items:
            winner = winners.get(item.id, item.id)
            if winner != item.id:
                batch.settled_ids.append(item.id)  # the next poll skips the guid id without a claim
                if batch.seen_before(self._store, winner):
                    continue
                item = dataclasses.replace(item, id=winner)
            kept.append(item)
        return kept

    def _report(self, batch: Batch, repeats: list[str], undated: list[str]) -> None:
        """One counted line per poll for repeated ids and for missing dates (not one per entry)."""
        name = self.source.name
        if repeats:
            batch.error(f"{name}: {len(repeats)} entries repeat an id already in this feed (e.g. {repeats[0]!r}); "
                        "each id is kept once")
        if undated:
            # Many real feeds carry no dates at all: counted and noted, not an error.
            batch.flag("undated", len(undated))
            logger.info("%s: %d new entries carry no date (e.g. %s); their fetch time orders them",
                        name, len(undated), undated[0])

    def _published(self, entry: Any, now: datetime, url: str, batch: Batch) -> datetime | None:
        when = _entry_time(entry, self._zone)
        if when is not None and when > now + FUTURE_SLACK:
            batch.error(f"{self.source.name}: {url} dated {when.isoformat()}, in the future; using the fetch time")
            return now
        return when

    def _with_page(self, item: RawItem, batch: Batch) -> RawItem:
        """Attach the article page; on failure keep the feed's summary so the item is not lost."""
        src = self.source
        try:
            final, page = fetch_article(
                self._fetcher, item.url, source=src.name, found_on=src.url, allowed_hosts=src.allowed_hosts,
                encoding=None,
            )
        except NewsradarError as exc:
            batch.error(f"{src.name}: article page {item.url} not fetched ({exc}); keeping the feed summary")
            return item
        return dataclasses.replace(item, url=final, html=page)
