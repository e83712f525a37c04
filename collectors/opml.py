"""OPML: move a feed reader's subscriptions in (``newsradar sources import``) and out (``… export``).

Reading: every ``<outline>`` with an ``xmlUrl`` is a feed, however deeply the reader nested its folders; its
name is the outline's ``title`` or ``text`` (else the feed's host). A file that declares a DOCTYPE or entities
is refused (billion laughs, external entities), as feeds are. Importing adds the feeds whose URL (canonical
form) the config does not have yet, as ``kind: rss`` sources at the end of the config's ``sources`` list:
the file is edited as text, so its comments and layout stay, and the result is validated before it replaces
the file (atomically). Writing: OPML 2.0 of the config's RSS sources (HTML pages and Naver queries are not
feeds a reader can subscribe to; they are listed as skipped).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from collectors.urls import canonical_url, host_of, looks_like_url
from newsradar.errors import ConfigError, ContentError
from newsradar.settings import Settings, load

_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_TOP_KEY = re.compile(r"^[A-Za-z_][\w-]*\s*:")
_SOURCES_KEY = re.compile(r"^sources\s*:\s*(\[\s*\])?\s*(#.*)?$")


@dataclass(frozen=True)
class Feed:
    """One subscription: its name, feed URL and (if the reader knew it) the site's URL."""

    name: str
    url: str
    site: str = ""


def read_opml(data: bytes, where: str) -> list[Feed]:
    """The feeds of an OPML document, in document order, each URL once; raises ContentError naming ``where``."""
    if _DECLARATION.search(data):
        raise ContentError(f"{where}: declares a DOCTYPE or entities; refused (billion laughs, external entities)")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ContentError(f"{where}: not well-formed XML ({exc})") from None
    if root.tag.lower() != "opml":
        raise ContentError(f"{where}: not an OPML file (root element <{root.tag}>)")
    feeds: list[Feed] = []
    seen: set[str] = set()
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if not url:
            continue  # a folder
        if not looks_like_url(url):
            raise ContentError(f"{where}: outline {outline.get('text')!r} has xmlUrl {url!r}, not an http(s) URL")
        key = canonical_url(url)
        if key in seen:
            continue
        seen.add(key)
        name = " ".join((outline.get("title") or outline.get("text") or "").split()) or host_of(url)
        feeds.append(Feed(name, url, (outline.get("htmlUrl") or "").strip()))
    return feeds


def write_opml(settings: Settings, title: str = "newsradar sources") -> tuple[bytes, list[str]]:
    """(OPML 2.0 document of the enabled and disabled RSS sources, names of the sources left out)."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(datetime.now(UTC))
    body = ET.SubElement(root, "body")
    skipped: list[str] = []
    for source in settings.sources:
        if source.kind != "rss" or not looks_like_url(source.url):
            skipped.append(source.name)
            continue
        attributes = {"type": "rss", "text": source.name, "title": source.outlet or source.name, "xmlUrl": source.url}
        ET.SubElement(body, "outline", attributes)
    ET.indent(root)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n", skipped


def _entry(feed: Feed, names: set[str]) -> str:
    name, n = feed.name, 2
    while name in names:
        name, n = f"{feed.name} ({n})", n + 1
    names.add(name)
    return f"{{name: {json.dumps(name, ensure_ascii=False)}, url: {json.dumps(feed.url, ensure_ascii=False)}}}"


def _with_sources(text: str, entries: list[str]) -> str:
    """``text`` (a YAML config) with ``entries`` appended to its top-level ``sources`` list, as text."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _SOURCES_KEY.match(line)), None)
    if start is None:
        body = "\n".join(lines).rstrip("\n")
        return (body + "\n\n" if body else "") + "sources:\n" + "".join(f"  - {e}\n" for e in entries)
    if _SOURCES_KEY.match(lines[start]) and "[" in lines[start].split("#", 1)[0]:
        lines[start] = "sources:"
    end, indent = start, None
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if _TOP_KEY.match(line):
            break  # the next top-level key: comments and blank lines before it stay with it
        if line.strip() and not line.lstrip().startswith("#") and line[0] in " \t-":
            end = i  # the last line of the list so far
            if indent is None and line.lstrip().startswith("- "):
                indent = line[: len(line) - len(line.lstrip())]  # the first item's (may be none: YAML allows it)
    new = [f"{'  ' if indent is None else indent}- {e}" for e in entries]
    return "\n".join(lines[: end + 1] + new + lines[end + 1:]) + "\n"


@dataclass
class ImportResult:
    added: list[Feed]
    already: list[Feed]


def import_opml(config_path: Path, opml_path: Path, dry_run: bool = False) -> ImportResult:
    """Add the OPML file's new feeds to the config file (validated, then replaced atomically).

    Raises ContentError for an unreadable OPML file and ConfigError when the config cannot be read or the
    result would not validate (the config is then left as it was).
    """
    try:
        data = opml_path.read_bytes()
    except OSError as exc:
        raise ContentError(f"{opml_path}: cannot read: {exc.strerror or exc}") from None
    feeds = read_opml(data, str(opml_path))
    settings = load(config_path)
    have = {canonical_url(s.url) for s in settings.sources if s.url}
    added = [f for f in feeds if canonical_url(f.url) not in have]
    already = [f for f in feeds if canonical_url(f.url) in have]
    if not added or dry_run:
        return ImportResult(added, already)
    names = {s.name for s in settings.sources}
    text = _with_sources(config_path.read_text(encoding="utf-8"), [_entry(f, names) for f in added])
    fd, tmp = tempfile.mkstemp(prefix=".import-", suffix=".yaml", dir=config_path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        merged = load(tmp)  # the edited file must validate before it replaces the config
        if len(merged.sources) != len(settings.sources) + len(added):
            raise ConfigError(f"{config_path}: the sources list could not be extended as text; nothing changed")
        os.replace(tmp, config_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return ImportResult(added, already)
