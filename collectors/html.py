"""HTML sources: read a list page, pick article links with a CSS selector, fetch each new article page once.

Main-text extraction is not done here (processors/extract.py does it); this module only delivers the
decoded page. The article-fetching helper is shared with RSS sources that set ``fetch_articles``.
"""

from __future__ import annotations

import html as html_lib
import logging
import re
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser as HTMLParser
from selectolax.lexbor import LexborNode as Node

from collectors.batch import Batch, fetch_if_changed
from collectors.charset import decode_bytes
from collectors.fetch import Fetcher, FetchResult
from collectors.urls import canonical_url, host_of, item_id, same_site
from newsradar.errors import ContentError, PermanentError, TransientError
from newsradar.events import RawItem
from newsradar.settings import SourceSettings
from newsradar.store import StateStore

logger = logging.getLogger(__name__)

_HTML_TYPES = {None, "text/html", "application/xhtml+xml", "text/plain", "application/octet-stream"}
_SPACE = re.compile(r"\s+")
_SKIP_SCHEMES = ("javascript:", "mailto:", "tel:", "#", "data:")


def plain_text(fragment: str | None) -> str:
    """Text of an HTML fragment: tags removed, entities unescaped, whitespace collapsed."""
    if not fragment:
        return ""
    if "<" in fragment:
        tree = HTMLParser(f"<div>{fragment}</div>")
        node = tree.css_first("div")
        text = node.text(separator=" ") if node is not None else fragment
    else:
        text = html_lib.unescape(fragment)
    return _SPACE.sub(" ", text).strip()


def fetch_article(
    fetcher: Fetcher,
    url: str,
    *,
    source: str,
    found_on: str,
    allowed_hosts: Sequence[str] = (),
    encoding: str | None = None,
) -> tuple[str, str]:
    """Fetch and decode one article page (robots.txt honoured); returns (final URL, page text).

    ``found_on`` is the feed or list page that gave the link: a ``file:`` link is read only when that page
    is a local file too (the offline demo), so a remote feed cannot make us read files of this machine.
    Raises TransientError (try again next poll), PermanentError or ContentError (not an HTML page).
    """
    if url.strip().lower().startswith("file:") and not found_on.lower().startswith("file:"):
        raise PermanentError(f"{source}: {url}: a local file link in a page from {found_on}, not followed")
    result = fetcher.get(url, source=source, allowed_hosts=allowed_hosts, check_robots=True)
    if result.content_type not in _HTML_TYPES:
        raise ContentError(f"{source}: {url} is {result.content_type}, not an HTML page")
    return result.url, _page_text(result, source, url, encoding)


def _page_text(result: FetchResult, source: str, url: str, encoding: str | None) -> str:
    """The fetched page decoded (header, meta or sniffed charset; ``encoding`` from config wins)."""
    return decode_bytes(
        result.body,
        http_charset=result.declared_charset,
        kind="html",
        forced=encoding,
        where=f"{source}: {url}",
    ).text


def _link(node: Node) -> tuple[str, str] | None:
    anchor = node if node.tag == "a" else node.css_first("a[href]")
    if anchor is None:
        return None
    href = (anchor.attributes.get("href") or "").strip()
    if not href or href.lower().startswith(_SKIP_SCHEMES):
        return None
    return href, _SPACE.sub(" ", node.text(separator=" ")).strip()


def article_links(page: str, base_url: str, selector: str) -> list[tuple[str, str]]:
    """(absolute URL, link text) of the elements ``selector`` matches, in page order, without repeats."""
    tree = HTMLParser(page)
    base = tree.css_first("base[href]")
    if base is not None:
        base_url = urljoin(base_url, base.attributes.get("href") or "")
    links: list[tuple[str, str]] = []
    seen: set[str] = set()
    for node in tree.css(selector):
        found = _link(node)
        if found is None:
            continue
        url = urljoin(base_url, found[0])
        key = canonical_url(url)
        if key not in seen:
            seen.add(key)
            links.append((url, found[1]))
    return links


def site_name(page: str, fallback: str) -> str:
    """The outlet a page names for itself (og:site_name), or ``fallback``."""
    node = HTMLParser(page).css_first('meta[property="og:site_name"]')
    name = (node.attributes.get("content") or "").strip() if node is not None else ""
    return name or fallback


class HtmlCollector:
    """Polls one HTML source: list page → new article links → article pages."""

    def __init__(self, source: SourceSettings, fetcher: Fetcher, store: StateStore) -> None:
        if not source.link_selector:
            raise ValueError(f"{source.name}: an html source needs link_selector")
        self.source = source
        self._fetcher = fetcher
        self._store = store

    @classmethod
    def from_settings(cls, source: SourceSettings, fetcher: Fetcher, store: StateStore) -> HtmlCollector:
        return cls(source, fetcher, store)

    def collect(self, now: datetime) -> Batch:
        """One poll; called by the runner on the source's schedule.

        Raises TransientError / PermanentError when the list page itself cannot be fetched (the runner backs
        off); a failing article page is logged and counted in the batch and does not stop the others.
        """
        src = self.source
        batch = Batch(src.name)
        result = fetch_if_changed(
            self._fetcher, self._store, batch, src.url, allowed_hosts=src.allowed_hosts, check_robots=True
        )
        if result is None:
            return batch
        page = _page_text(result, src.name, src.url, src.encoding)
        links = article_links(page, result.url, src.link_selector or "a")
        if not links:
            batch.error(f"{src.name}: link_selector {src.link_selector!r} matched no links on {result.url}")
        outlet = src.outlet or site_name(page, host_of(result.url))
        retry_later = self._collect_articles(batch, links, result.url, outlet, now)
        if not retry_later:
            # Keep the old validators while an article failed transiently: an unchanged list page would
            # otherwise answer 304 and the failed article would never be tried again.
            batch.validators[src.url] = (result.etag, result.last_modified)
        return batch

    def _collect_articles(
        self, batch: Batch, links: list[tuple[str, str]], list_url: str, outlet: str, now: datetime
    ) -> bool:
        """Fetch new article pages into ``batch``; returns True if any failed transiently."""
        src = self.source
        list_host = host_of(list_url)
        retry_later = False
        for url, text in links[: src.max_articles]:
            batch.received += 1
            host = host_of(url)
            local = url.startswith("file:") and list_url.startswith("file:")  # an offline source's own files
            if not local and not same_site(host, list_host) and not any(same_site(host, h) for h in src.allowed_hosts):
                logger.info(
                    "%s: skipping %s: host %s is not %s nor in allowed_hosts", src.name, url, host, list_host
                )
                batch.drop("other_host")
                continue
            canonical = canonical_url(url)
            ident = item_id(None, canonical)
            if batch.seen_before(self._store, ident):
                continue
            fetched = self._article(batch, url, ident, list_url)
            if fetched is None:
                # Not settled for good means it failed transiently: keep the list page's old validators.
                retry_later = retry_later or ident not in batch.settled_ids
                continue
            final, page = fetched
            batch.items.append(
                RawItem(
                    id=ident,
                    source=src.name,
                    outlet=outlet,
                    url=final,
                    canonical_url=canonical,
                    title=text,
                    html=page,
                    fetched_at=now,
                )
            )
        return retry_later

    def _article(self, batch: Batch, url: str, ident: str, list_url: str) -> tuple[str, str] | None:
        """(final URL, page) of one article, or None after recording why not in ``batch``."""
        src = self.source
        try:
            return fetch_article(
                self._fetcher, url, source=src.name, found_on=list_url, allowed_hosts=src.allowed_hosts,
                encoding=src.encoding,
            )
        except TransientError as exc:
            batch.error(f"{src.name}: article {url} failed, will retry next poll: {exc}")
            batch.drop("article_transient")
        except PermanentError as exc:
            batch.error(f"{src.name}: article {url} skipped for good: {exc}")
            batch.drop("article_failed")
            batch.settled_ids.append(ident)  # remembered at finalize, so not retried every poll
        return None
