"""Canonical URLs and stable item ids, so one article reached through different links is one item.

Canonicalisation only makes changes that cannot point at a different page: case of scheme and host, the
default port, the fragment, tracking parameters and the order of query parameters. Query parameters are kept
as raw text (never decoded and re-encoded), because Korean sites still put EUC-KR percent-escapes in them.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

from newsradar.events import stable_id

# Parameters that identify a campaign, a click or a referrer, never the article itself.
# fmt: off
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid", "li_fat_id",
    "igshid", "igsh", "mc_cid", "mc_eid", "mkt_tok", "_hsenc", "_hsmi", "hsctatracking", "vero_id", "ref",
    "ref_src", "ref_url", "referrer", "ncid", "ocid", "cmpid", "spm", "sr_share", "share_from", "oly_anon_id",
    "oly_enc_id", "_ga", "_gl",
})
# fmt: on
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "__twitter")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_URL_LIKE = re.compile(r"^https?://", re.IGNORECASE)
_C0_OR_SPACE = "".join(map(chr, range(0x21)))


def _is_tracking(raw_key: str) -> bool:
    key = unquote(raw_key).strip().lower()
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


def _canonical_query(query: str) -> str:
    parts = [p for p in query.split("&") if p and not _is_tracking(p.split("=", 1)[0])]
    return "&".join(sorted(parts))


def _canonical_netloc(scheme: str, netloc: str) -> str:
    userinfo, _, hostport = netloc.rpartition("@")
    if hostport.startswith("["):  # IPv6 literal: keep the brackets, lower-case the rest
        host, _, rest = hostport.partition("]")
        host, port = host + "]", rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = hostport.partition(":")
    host = host.lower().rstrip(".")
    if port.isascii() and port.isdigit() and int(port) == _DEFAULT_PORTS.get(scheme):
        port = ""
    hostport = f"{host}:{port}" if port else host
    return f"{userinfo}@{hostport}" if userinfo else hostport


def _trim(url: str) -> str:
    """Strip Unicode whitespace and the C0 controls urlsplit would strip, until stable (keeps idempotence)."""
    while True:
        trimmed = url.strip().strip(_C0_OR_SPACE)
        if trimmed == url:
            return url
        url = trimmed


def canonical_url(url: str) -> str:
    """The canonical form of ``url``; idempotent. An unparsable URL is returned stripped of whitespace."""
    # One pass can expose something a second pass would change (dropping a fragment can leave a trailing
    # space): apply until stable. Real URLs settle after the first pass.
    current = url
    for _ in range(8):
        following = _canonical_once(current)
        if following == current:
            break
        current = following
    return current


def _canonical_once(url: str) -> str:
    text = _trim(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    scheme = parts.scheme.lower()
    netloc = _canonical_netloc(scheme, parts.netloc) if parts.netloc else ""
    path = parts.path
    if netloc and not path:
        path = "/"
    candidate = urlunsplit((scheme, netloc, path, _canonical_query(parts.query), ""))
    try:
        # Guard idempotence: if our rewrite parses differently (odd inputs), fall back to the stripped text.
        again = urlsplit(candidate)
    except ValueError:
        return text
    if (again.scheme, again.netloc, again.path) != (scheme, netloc, path):
        # Odd host or path (a bare "." host, "//" paths): keep them as they are, still drop tracking and fragment.
        kept = urlunsplit((parts.scheme, parts.netloc, parts.path, _canonical_query(parts.query), ""))
        try:
            same = urlsplit(kept)
        except ValueError:
            return text
        return kept if (same.scheme, same.netloc, same.path) == (parts.scheme, parts.netloc, parts.path) else text
    return candidate


def without_tracking(url: str) -> str:
    """``url`` as people should see and share it: tracking parameters (``utm_*``, ``fbclid``, ``gclid`` …, the
    ones ``canonical_url`` drops) removed; everything else (parameter order, case, fragment) kept as it was."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.query:
        return url
    kept = [p for p in parts.query.split("&") if p and not _is_tracking(p.split("=", 1)[0])]
    query = "&".join(kept)
    return url if query == parts.query else urlunsplit(parts._replace(query=query))


def host_of(url: str) -> str:
    """Lower-case host name of ``url`` ('' when there is none or it cannot be parsed)."""
    try:
        return (urlsplit(url.strip()).hostname or "").rstrip(".")
    except ValueError:
        return ""


def same_site(host: str, other: str) -> bool:
    """True when two host names are the same, ignoring case and a leading 'www.'."""

    def bare(h: str) -> str:
        h = h.lower().rstrip(".")
        return h.removeprefix("www.")

    return bool(host) and bare(host) == bare(other)


def looks_like_url(text: str) -> bool:
    return bool(_URL_LIKE.match(text.strip()))


def item_id(guid: str | None, canonical: str) -> str:
    """Stable id of a feed entry or article page.

    A guid is preferred because it survives edits to the link. A URL-like guid is canonicalised first, so it
    gives the same id as the same URL reached as a link. Other guids (numbers, tag: URIs) are scoped by the
    link's host, so two sites that both number their posts 1, 2, 3 do not collide.
    """
    g = (guid or "").strip()
    if g and looks_like_url(g):
        return stable_id(canonical_url(g))
    if g:
        return stable_id("guid", host_of(canonical), g)
    return stable_id(canonical)
