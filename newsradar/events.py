"""The event model: what flows between stages over the bus.

Every stage talks to the next only through these frozen dataclasses, encoded as
versioned JSON (``{"v": 1, "type": "RawItem", "data": {...}}``) so that a process
of another version, or a Kafka consumer, can read them. Times are always
timezone-aware; naive datetimes are rejected at construction.

orjson writes and reads the JSON: it serialises the dataclasses themselves (times as ISO 8601, tuples as
arrays, UTF-8 text unescaped), a tenth of the cost of walking them in Python, and every event crosses the
bus and the state store several times on its way to an alert.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import orjson

SCHEMA_VERSION = 1


def stable_id(*parts: str) -> str:
    """A short stable id (16 hex chars of sha256) for a guid or canonical URL."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:16]


def _check_aware(name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")


@dataclass(frozen=True)
class RawItem:
    """One item as a collector saw it: a feed entry or an article page.

    ``body`` is the feed's summary/description (may hold HTML); ``html`` is the
    whole article page when the collector fetched it (HTML sources).
    """

    id: str
    source: str
    outlet: str
    url: str
    canonical_url: str
    title: str
    body: str = ""
    html: str | None = None
    published_at: datetime | None = None
    fetched_at: datetime | None = None
    guid: str | None = None

    def __post_init__(self) -> None:
        _check_aware("published_at", self.published_at)
        _check_aware("fetched_at", self.fetched_at)


@dataclass(frozen=True)
class Match:
    """One watchlist hit: ``start``/``end`` index the article's ``document`` text."""

    term: str
    surface: str
    start: int
    end: int
    score: float
    alias: str = ""


@dataclass(frozen=True)
class Article:
    """A cleaned article: main text only (no page furniture), with its matches."""

    id: str
    source: str
    outlet: str
    url: str
    title: str
    text: str
    published_at: datetime | None = None
    fetched_at: datetime | None = None
    matches: tuple[Match, ...] = ()

    def __post_init__(self) -> None:
        _check_aware("published_at", self.published_at)
        _check_aware("fetched_at", self.fetched_at)

    @property
    def document(self) -> str:
        """The text the matcher reads and match spans point into: title, newline, text."""
        return f"{self.title}\n{self.text}" if self.text else self.title

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(sorted({m.term for m in self.matches}))


@dataclass(frozen=True)
class Story:
    """A cluster of copies of one event. The lead is the earliest published copy.

    ``snippet`` is a short excerpt around the first match in the lead and
    ``highlights`` the (start, end) spans of matched words inside it, so
    notifiers can bold them without re-running the matcher. ``rules`` names the
    watchlist rules the story satisfies (for routing).
    """

    id: str
    lead: Article
    first_seen: datetime
    outlets: tuple[str, ...] = ()
    copies: int = 1
    terms: tuple[str, ...] = ()
    matches: tuple[Match, ...] = ()
    snippet: str = ""
    highlights: tuple[tuple[int, int], ...] = ()
    rules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_aware("first_seen", self.first_seen)

    @property
    def carried_by(self) -> int:
        """Number of distinct outlets carrying the story."""
        return max(1, len(self.outlets))


@dataclass(frozen=True)
class StoryUpdate:
    """Published by the grouping stage each time an article joins (or starts) a relevant story.

    ``absorbed`` names the stories this article showed to be the same event, now folded into
    ``story`` (their alerts, where ``story`` had none, were handed over to it). ``fetched_at`` is when
    the collector fetched (and published) that article: the start of the publish → notify lag.
    """

    story: Story
    article_id: str
    is_new: bool
    absorbed: tuple[str, ...] = ()
    fetched_at: datetime | None = None

    def __post_init__(self) -> None:
        _check_aware("fetched_at", self.fetched_at)


@dataclass(frozen=True)
class Notification:
    """A record of an alert delivered (or printed) for a story on one channel."""

    story_id: str
    channel: str
    outlets: int
    ref: str = ""
    sent_at: datetime | None = None


@dataclass(frozen=True)
class DeadLetter:
    """An event that kept failing, with the reason; published to the dead-letter topic."""

    topic: str
    key: str
    payload: str
    reason: str
    attempts: int
    failed_at: datetime | None = None
    TYPE: ClassVar[str] = "DeadLetter"


EVENT_TYPES: dict[str, type] = {
    cls.__name__: cls for cls in (RawItem, Match, Article, Story, StoryUpdate, Notification, DeadLetter)
}


# How each field of each event is read back from its JSON: "time" (ISO 8601), "one" / "many" (a nested event, a
# tuple of them), "tuple" and "pairs" (fields typed as tuples of plain values, and of (start, end) pairs: JSON
# arrays); the rest as is.
_NESTED = {
    ("Article", "matches"): Match,
    ("Story", "lead"): Article,
    ("Story", "matches"): Match,
    ("StoryUpdate", "story"): Story,
}
_TIMES = {"published_at", "fetched_at", "first_seen", "sent_at", "failed_at"}
_Spec = tuple[tuple[str, str, type | None], ...]


def _kind(cls: type, field: dataclasses.Field) -> tuple[str, type | None]:
    nested = _NESTED.get((cls.__name__, field.name))
    tupled = str(field.type).startswith("tuple")
    if nested is not None:
        return ("many" if tupled else "one"), nested
    if field.name in _TIMES:
        return "time", None
    if field.name == "highlights":
        return "pairs", None
    return ("tuple" if tupled else "plain"), None


_SPECS: dict[type, _Spec] = {
    cls: tuple((f.name, *_kind(cls, f)) for f in dataclasses.fields(cls)) for cls in EVENT_TYPES.values()
}


def _from_plain(cls: type, data: dict[str, Any]) -> Any:
    """The event of type ``cls`` from its JSON values; fields a newer writer added are ignored."""
    kwargs: dict[str, Any] = {}
    for name, kind, nested in _SPECS[cls]:
        if name not in data:
            continue
        value = data[name]
        if value is None or kind == "plain":
            kwargs[name] = value
        elif kind == "time":
            kwargs[name] = datetime.fromisoformat(value)
        elif kind == "tuple":
            kwargs[name] = tuple(value)
        elif kind == "pairs":
            kwargs[name] = tuple((int(a), int(b)) for a, b in value)
        elif kind == "one":
            kwargs[name] = _from_plain(nested, value)  # type: ignore[arg-type]
        else:
            kwargs[name] = tuple(_from_plain(nested, v) for v in value)  # type: ignore[arg-type]
    return cls(**kwargs)


def encode(event: Any) -> bytes:
    """Serialise an event to versioned JSON bytes (UTF-8)."""
    name = type(event).__name__
    if name not in EVENT_TYPES:
        raise TypeError(f"not an event: {type(event)!r}")
    try:
        # numpy numbers (a score computed with numpy) are written as the json module wrote numpy's float64
        return orjson.dumps({"v": SCHEMA_VERSION, "type": name, "data": event}, option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError as exc:  # e.g. a lone surrogate in a text: named, not a bare TypeError
        raise ValueError(f"{name} {getattr(event, 'id', '')!r} cannot be written as JSON: {exc}") from exc


def decode(payload: bytes | str) -> Any:
    """Parse versioned JSON back into its event; raises ValueError on an unknown type or version."""
    try:
        envelope = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not an event: {exc}") from exc
    if not isinstance(envelope, dict):
        raise ValueError(f"not an event: JSON {type(envelope).__name__}, not an object")
    version = envelope.get("v")
    if version != SCHEMA_VERSION:
        raise ValueError(f"unsupported event schema version {version!r}")
    cls = EVENT_TYPES.get(envelope.get("type", ""))
    if cls is None:
        raise ValueError(f"unknown event type {envelope.get('type')!r}")
    return _from_plain(cls, envelope["data"])


__all__ = [
    "Article",
    "DeadLetter",
    "Match",
    "Notification",
    "RawItem",
    "SCHEMA_VERSION",
    "Story",
    "StoryUpdate",
    "decode",
    "encode",
    "stable_id",
]
