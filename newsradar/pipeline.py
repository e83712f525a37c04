"""The concrete stages, wired once from validated settings.

    collector  ──RawItem──▶ raw-items ──▶ extract+match ──Article──▶ articles
    articles ──▶ group (story index + story records) ──StoryUpdate──▶ story-updates ──▶ notify (Slack)
    state store ──▶ digest job (email, daily)

Each stage reads one topic in its own consumer group and writes the next, so
the embedded daemon runs them as threads and the Kafka roles run them as
separate processes with no change. This module is the only place that knows
the collectors, processors and notifiers together; the collector stage itself
lives in newsradar.collect (re-exported here), so sweep workers import no processor.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from newsradar.bus.base import ARTICLES, RAW, STORIES
from newsradar.collect import CollectStage, PollSummary, make_collector, utcnow
from newsradar.errors import StateError, TransientError
from newsradar.events import Article, RawItem, Story, StoryUpdate
from newsradar.metrics import Metrics
from newsradar.runner import Output
from newsradar.settings import Settings
from newsradar.store import StateStore, StoryWrite
from processors.match import Matcher

if TYPE_CHECKING:
    from processors.grouping import Grouper

log = logging.getLogger(__name__)

__all__ = ["CollectStage", "ExtractMatchStage", "GroupStage", "NotifyStage", "PollSummary", "make_collector", "utcnow"]


class ExtractMatchStage:
    """raw-items → articles: main text only, then the watchlist matches. Stateless: scale by adding instances."""

    name = "processor"
    topic = RAW
    group = "newsradar-processor"

    def __init__(self, settings: Settings, matcher: Matcher) -> None:
        from processors.extract import extract  # here, not at the top: a notifier or collector needs none of it

        self._extract = extract
        self.matcher = matcher
        self.selectors = {s.name: s.content_selector for s in settings.sources}

    @classmethod
    def from_settings(cls, settings: Settings) -> ExtractMatchStage:
        return cls(settings, Matcher.from_settings(settings.watchlist))

    def article(self, raw: RawItem) -> Article:
        """Extract and match one raw item (also used by batch classify)."""
        article = self._extract(raw, content_selector=self.selectors.get(raw.source))
        return _with_matches(article, self.matcher)

    def process(self, event: Any) -> list[Output]:
        if not isinstance(event, RawItem):
            raise ValueError(f"expected RawItem, got {type(event).__name__}")
        article = self.article(event)
        return [(ARTICLES, article.id, article)]

    def flush(self) -> None:
        """Nothing buffered."""


def _with_matches(article: Article, matcher: Matcher) -> Article:
    matches = tuple(matcher.find(article.document))
    return Article(**{**article.__dict__, "matches": matches})


STORY_CACHE = 200_000  # story records a grouper keeps in memory (a few KB each at most)


class GroupStage:
    """articles → story-updates: assigns each article to a story and keeps the story record.

    Must run as a single active member (the articles topic has one partition); a stand-by in another
    process or on another host takes over from the state store, which holds every decision and story.
    A delivered batch is written in one transaction (``flush``, before its updates are published and
    its offsets committed): the grouper's decisions, the story records and their members, fenced by
    this instance's claim. A batch that finds another instance has claimed the index since it began is
    not written: the stage stops (StateError) without committing, and its articles are grouped again
    from the recorded state, here after a restart or by the instance that took over.
    """

    name = "grouper"
    topic = ARTICLES
    group = "newsradar-grouper"

    def __init__(self, settings: Settings, store: StateStore, matcher: Matcher) -> None:
        self.settings = settings
        self.store = store
        self.matcher = matcher
        self.writer = uuid.uuid4().hex
        self._claimed = False  # the claim was checked for the batch in hand
        self._writes: list[StoryWrite] = []  # the batch's story writes, in order
        self._stories: dict[str, Story | None] = {}  # the batch's story states (None: folded into another)
        self._members: set[tuple[str, str]] = set()  # the batch's (story, article) memberships
        # Story records as this instance last wrote them. It is the only writer while its claim holds, so
        # they stay true until another instance claims the index (then the index and these are rebuilt).
        self._cache: dict[str, Story | None] = {}
        self.grouper = self._open_grouper()

    @classmethod
    def from_settings(cls, settings: Settings, store: StateStore) -> GroupStage:
        return cls(settings, store, Matcher.from_settings(settings.watchlist))

    def _open_grouper(self) -> Grouper:
        from processors.grouping import Grouper  # here: only a grouper needs it (numpy, the compiled core)

        window = timedelta(days=self.settings.grouping.window_days)
        return Grouper(window, store=self.store, writer=self.writer)

    def process(self, event: Any) -> list[Output]:
        if not isinstance(event, Article):
            raise ValueError(f"expected Article, got {type(event).__name__}")
        if not self._claimed:
            if self.store.claim_grouping(self.writer):
                log.info("grouper: another instance wrote story state since; rebuilding the story index")
                self.grouper.close()
                self.grouper = self._open_grouper()
                self._cache.clear()
            self._claimed = True
        placement = self.grouper.place(event)
        story_id = placement.story_id
        now = utcnow()
        story = None if placement.started else self._story(story_id)
        for other_id in placement.absorbed:
            other = self._story(other_id)
            if other is None:
                continue  # folded already (a redelivery) or pruned
            story = self._decorate(fold(story, other) if story is not None else replace(other, id=story_id))
            self._write(StoryWrite(story, absorbed_id=other_id))
            log.info("grouper: story %s folded into %s (%d copies now)", other_id, story_id, story.copies)
        if story is None:
            story = self._decorate(
                Story(id=story_id, lead=event, first_seen=now, outlets=(event.outlet,), terms=event.terms)
            )
        elif not placement.known or not self._has_article(story_id, event.id):
            story = self._decorate(merge(story, event))
        # else: a redelivery; the record already holds this article, publish its state again (idempotent downstream)
        self._write(StoryWrite(story, article_id=event.id, copy=event))  # the copy: for the dashboard
        if not story.terms:
            return []
        update = StoryUpdate(story=story, article_id=event.id, is_new=story.copies == 1, absorbed=placement.absorbed,
                             fetched_at=event.fetched_at)
        return [(STORIES, story.id, update)]

    def _story(self, story_id: str) -> Story | None:
        if story_id in self._stories:
            return self._stories[story_id]
        if story_id in self._cache:
            return self._cache[story_id]
        return self.store.story(story_id)

    def _has_article(self, story_id: str, article_id: str) -> bool:
        return (story_id, article_id) in self._members or self.store.story_has_article(story_id, article_id)

    def _write(self, write: StoryWrite) -> None:
        """Keep one story write for the batch's transaction, and what it changes for the batch's next reads."""
        self._writes.append(write)
        self._stories[write.story.id] = write.story
        if write.article_id:
            self._members.add((write.story.id, write.article_id))
        if write.absorbed_id:
            self._stories[write.absorbed_id] = None
            self._members |= {(write.story.id, a) for s, a in self._members if s == write.absorbed_id}

    def _decorate(self, story: Story) -> Story:
        """Terms, lead matches, snippet with highlight spans and satisfied rules, from the current copies."""
        lead = story.lead
        if not story.terms:  # nothing watched in it (most of a stream): never alerted, listed or shown
            snippet, spans = "", []
        elif story.snippet and lead.matches and story.matches is lead.matches:  # the lead it was decorated with
            snippet, spans = story.snippet, list(story.highlights)
        else:
            snippet, spans = self.matcher.snippet(lead.document, lead.matches, self.settings.watchlist.snippet_chars)
        rules = tuple(r.name for r in self.matcher.rules_matched(story.terms))
        return Story(
            **{**story.__dict__, "matches": lead.matches, "snippet": snippet, "highlights": tuple(spans),
               "rules": rules}
        )

    def flush(self) -> None:
        """Write the batch's decisions and story records in one transaction (TransientError: retried whole)."""
        decisions = self.grouper.held()
        try:
            if (decisions or self._writes) and not self.store.commit_grouping(self.writer, decisions, self._writes,
                                                                                utcnow()):  # fmt: skip
                raise StateError("grouper: another instance has claimed the story index since this batch began; "
                                 "stopping without committing (its articles will be grouped again)")
        except TransientError:
            self.grouper.hold_again(decisions)  # the runner retries the flush: write the same batch then
            raise
        if len(self._cache) > STORY_CACHE:
            self._cache.clear()  # crude but bounded: the store answers until the stories are seen again
        self._cache.update(self._stories)
        self._writes, self._stories, self._members = [], {}, set()
        self._claimed = False

    def close(self) -> None:
        self.grouper.close()


def _published(article: Article) -> datetime:
    return article.published_at or article.fetched_at or datetime.max.replace(tzinfo=timezone.utc)


def merge(story: Story, article: Article) -> Story:
    """Add a copy: the earliest published copy is the lead; outlets and terms accumulate."""
    lead = article if _published(article) < _published(story.lead) else story.lead
    outlets = story.outlets + ((article.outlet,) if article.outlet not in story.outlets else ())
    terms = tuple(sorted(set(story.terms) | set(article.terms)))
    return Story(**{**story.__dict__, "lead": lead, "outlets": outlets, "copies": story.copies + 1, "terms": terms})


def fold(story: Story, other: Story) -> Story:
    """One story from two found to be the same event: copies add up, the earliest lead and first sighting win."""
    lead = other.lead if _published(other.lead) < _published(story.lead) else story.lead
    outlets = story.outlets + tuple(o for o in other.outlets if o not in story.outlets)
    return Story(**{
        **story.__dict__, "lead": lead, "first_seen": min(story.first_seen, other.first_seen), "outlets": outlets,
        "copies": story.copies + other.copies, "terms": tuple(sorted(set(story.terms) | set(other.terms))),
    })  # fmt: skip


class NotifyStage:
    """story-updates → Slack (or the console): one alert per story per channel, edited as copies arrive.

    Two filters of issue 18 live here, so every sink has them: a story whose earliest copy is older than
    ``slack.alert_max_age_hours`` (or an undated copy from a source's first poll: its backlog) is never
    alerted (it still shows in digests), unless it was alerted before (then it is edited as usual); and
    after each flush, and every few seconds from the daemon, what quiet hours held is released when due.
    """

    name = "notifier"
    terminal = True  # its effect is the alert, not an output event
    topic = STORIES
    group = "newsradar-notifier"

    def __init__(self, sink: Any, store: StateStore | None = None, max_age: timedelta | None = None,
                 metrics: Metrics | None = None) -> None:  # fmt: skip
        self.sink = sink
        self.store = store
        self.max_age = max_age
        self.metrics = metrics
        self._fetched: list[datetime] = []  # fetch times of the copies buffered, for the publish → notify lag
        self.held_old: set[str] = set()  # stories not alerted for their age, this process
        self.lock = threading.Lock()  # flush (runner thread) and release (scheduler thread) share the sink

    @classmethod
    def from_settings(cls, settings: Settings, store: StateStore, metrics: Metrics | None = None) -> NotifyStage:
        from notifiers import alert_sink

        return cls(alert_sink(settings, store), store, timedelta(hours=settings.slack.alert_max_age_hours), metrics)

    def process(self, event: Any) -> list[Output]:
        if not isinstance(event, StoryUpdate):
            raise ValueError(f"expected StoryUpdate, got {type(event).__name__}")
        if self._too_old(event.story):
            if event.story.id not in self.held_old:
                log.info("notifier: story %s not alerted: first published %s, older than the alert age",
                         event.story.id, _published(event.story.lead).isoformat())
            self.held_old.add(event.story.id)
            return []
        with self.lock:
            self.sink.add(event)
        if event.fetched_at is not None:
            self._fetched.append(event.fetched_at)
        return []

    def _too_old(self, story: Story) -> bool:
        if self.max_age is None or self.store is None:
            return False
        lead = story.lead
        first_poll = self.store.first_poll(lead.source) if lead.published_at is None else None
        backlog = first_poll is not None and lead.fetched_at is not None and (
            abs((lead.fetched_at - first_poll).total_seconds()) < 1.0)
        if not backlog and utcnow() - _published(lead) <= self.max_age:
            return False
        # alerted before (e.g. an old story that gained a copy): keep editing that message
        return not any(self.store.alert(story.id, channel) for channel in self.sink.channels(story))

    def flush(self) -> None:
        with self.lock:
            self.sink.flush()
        if self.metrics is not None:
            now = utcnow()
            for fetched in self._fetched:
                self.metrics.observe_lag((now - fetched).total_seconds())
        self._fetched.clear()
        try:
            self.release_due()
        except Exception as exc:  # noqa: BLE001 - the buffered alerts were delivered; the next release retries
            log.warning("notifier: releasing held alerts failed, will retry: %s: %s", type(exc).__name__, exc)

    def release_due(self) -> int:
        """Send what quiet hours held where the window is over; returns stories released (see the sinks)."""
        release = getattr(self.sink, "release_due", None)
        if release is None:
            return 0
        with self.lock:
            return int(release())

    def held_for_quiet_hours(self) -> int:
        """Alerts waiting in the outbox for a quiet window to end."""
        return len(self.store.held_alerts()) if self.store is not None else 0

    def close(self) -> None:
        self.sink.close()
