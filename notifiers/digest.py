"""The daily digest: pick the stories since the last digest actually sent, render text + HTML, send once a day.

Choices: a story with several terms appears once, under its first term in watchlist order (its other
terms are listed with it), so nobody reads the same story twice. An empty digest ("새 기사 없음") is
still sent: silence would look the same as a dead pipeline. The first digest to a new recipient
covers the last 24 hours.

Issue 18: stories whose earliest copy is older than ``slack.alert_max_age_hours`` (never alerted) are listed
apart, under "이전 기사"; a recipient with a subscription gets only its terms or rules; and each digest carries
the trend chart (notifiers/chart.py) with its figures as text beside it. The Slack digest
(notifiers/slack_digest.py) takes the same selection through ``select``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from newsradar.errors import PermanentError, TransientError
from newsradar.events import Story
from newsradar.settings import Settings
from newsradar.store import StateStore
from notifiers import chart as charts
from notifiers import claims
from notifiers import slack_format as fmt
from notifiers.claims import DIGEST_LEASE
from notifiers.trend import Trend, trend, trend_lines

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
FIRST_LOOKBACK = timedelta(days=1)
SUBJECT_CHARS = 200
_LINE_BREAK = re.compile(r"[\r\n\v\f\x85\u2028\u2029]")
DEFAULT_SUBJECT = "[newsradar] {date} 뉴스 다이제스트 ({count}건)"


@dataclass(frozen=True)
class DigestGroup:
    """The stories shown under one watchlist term, most-carried first."""

    term: str
    stories: tuple[Story, ...]


@dataclass(frozen=True)
class Digest:
    """One rendered digest for one recipient and local day; ``cutoff`` becomes the next digest's start."""

    recipient: str
    day: str
    subject: str
    text: str
    html: str
    stories: tuple[Story, ...]
    groups: tuple[DigestGroup, ...]
    cutoff: datetime
    since: datetime
    earlier: tuple[Story, ...] = ()  # first published before the alert age: never alerted, listed here
    chart_png: bytes | None = None  # the trend chart; the HTML shows it as cid:CHART_CID
    trend_text: tuple[str, ...] = ()


@dataclass(frozen=True)
class Selection:
    """What one digest holds: stories by term (fresh) and the earlier ones, for one recipient or channel."""

    groups: tuple[DigestGroup, ...]
    earlier: tuple[Story, ...]
    since: datetime
    until: datetime

    @property
    def count(self) -> int:
        return sum(len(g.stories) for g in self.groups) + len(self.earlier)


class DigestTransport(Protocol):
    """Where a digest goes: SMTP (notifiers.email) or files + stdout (notifiers.console)."""

    def deliver(self, digest: Digest, sender: str) -> str:
        """Called once per send attempt; returns a reference (Message-ID or path).
        Raises TransientError (try later) or PermanentError (fix the configuration)."""
        ...


def _environment() -> Environment:
    # Autoescape only the HTML template: the text template must keep "&" and "<" as they are.
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html.j2", "html"), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def send_each(targets: Sequence[str], send: Callable[[str], bool], what: str, verb: str) -> list[str]:
    """``send`` to every target; one failing target does not stop the others. Returns those it went to.

    After trying everyone, raises TransientError if any send may succeed later (the caller retries; those
    already served are skipped then), else PermanentError if any failed for good. ``what``/``verb`` name the
    thing in the log and errors ("digest", "sent"; "Slack digest", "posted").
    """
    sent: list[str] = []
    transient: list[TransientError] = []
    permanent: list[PermanentError] = []
    for target in targets:
        try:
            if send(target):
                sent.append(target)
        except TransientError as exc:
            log.warning("%s for %s not %s, will retry: %s", what, target, verb, exc)
            transient.append(exc)
        except PermanentError as exc:
            log.error("%s for %s not %s: %s", what, target, verb, exc)
            permanent.append(exc)
    if transient:
        waits = [e.retry_after for e in transient if e.retry_after is not None]
        raise TransientError(f"{len(transient)} {what}(s) not {verb} yet: {transient[0]}",
                             retry_after=max(waits) if waits else None)
    if permanent:
        raise PermanentError(f"{len(permanent)} {what}(s) failed: {permanent[0]}")
    return sent


class DigestMailer:
    """Sends the daily digest to each recipient at most once per local day, across restarts."""

    def __init__(self, settings: Settings, store: StateStore, transport: DigestTransport) -> None:
        self._settings = settings
        self._digest = settings.digest
        self._store = store
        self._transport = transport
        self._env = _environment()
        self._zone = ZoneInfo(settings.digest.timezone)
        self._charts: dict[str, bytes | None] = {}
        self.owner = claims.owner()  # this notifier's name on digest claims (notifiers/claims.py)

    def day(self, now: datetime) -> str:
        """The local date (digest time zone) a digest sent at ``now`` belongs to."""
        return now.astimezone(self._zone).date().isoformat()

    def recipients(self) -> list[str]:
        """Configured recipients, deduplicated; malformed ones (CR/LF, no address) are logged and skipped."""
        good: list[str] = []
        for raw in self._digest.recipients:
            address = parseaddr(raw)[1]
            if _LINE_BREAK.search(raw) or address.count("@") != 1 or any(c.isspace() for c in address):
                log.error("digest.recipients: %r is not a single email address; skipped", raw)
            elif raw.strip() not in good:
                good.append(raw.strip())
        return good

    def past_send_time(self, now: datetime) -> bool:
        """Whether today's local send time (digest.time in digest.timezone) has come."""
        return now.astimezone(self._zone).time() >= self._digest.at

    def due(self, now: datetime) -> list[str]:
        """Recipients whose digest for today's local date is not yet sent, once the local send time has passed."""
        if not self.past_send_time(now):
            return []
        day = self.day(now)
        return [r for r in self.recipients() if self._store.digest_state(day, r) != "sent"]

    def select(self, key: str, now: datetime, subscriber: str | None = None) -> Selection:
        """Stories that became relevant after the last digest SENT under ``key``, up to ``now``, that
        ``subscriber`` (default: ``key``) subscribed to; fresh ones by term, earlier ones apart."""
        since = self._store.last_digest_cutoff(key) or (now - FIRST_LOOKBACK)
        wanted = subscription(self._settings, subscriber or key)
        stories = [s for s in self._store.relevant_stories(since, now) if wanted(s)]
        oldest = now - timedelta(hours=self._settings.slack.alert_max_age_hours)
        fresh = [s for s in stories if earliest(s) >= oldest]
        earlier = sorted((s for s in stories if earliest(s) < oldest), key=_prominence)
        groups = group_by_term(fresh, [t.name for t in self._settings.watchlist.terms])
        return Selection(tuple(groups), tuple(earlier), since, now)

    def trend(self, now: datetime, subscriber: str) -> Trend:
        """Stories per term per day over digest.chart_days, for the terms ``subscriber`` follows."""
        days = self._digest.chart_days
        chosen = subscribed_terms(self._settings, subscriber)
        stories = self._store.stories_touched_since(now - timedelta(days=days + 1))
        return trend(stories, chosen, now, days, self._settings.timezone)

    def chart(self, data: Trend) -> bytes | None:
        """The chart PNG of ``data`` (drawn once per distinct trend), or None (no Korean font, no data)."""
        key = repr(data)
        if key not in self._charts:
            self._charts.clear()  # one day's charts at most
            self._charts[key] = charts.render(data)
        return self._charts[key]

    def build(self, recipient: str, now: datetime) -> Digest:
        """Stories that became relevant after the last digest SENT to ``recipient``, up to ``now``."""
        chosen = self.select(recipient, now)
        groups, since = list(chosen.groups), chosen.since
        ordered = tuple(s for g in groups for s in g.stories)
        data = self.trend(now, recipient)
        png = self.chart(data)
        trend_text = trend_lines(data)
        day = self.day(now)
        context = {
            "date": day,
            "count": len(ordered) + len(chosen.earlier),
            "since": fmt.local_time(since, self._settings.timezone),
            "until": fmt.local_time(now, self._settings.timezone),
            "groups": [{"term": g.term, "stories": [self._view(s) for s in g.stories]} for g in groups],
            # issue 17: each source alert (broken, recovered) decided since the last digest, as one line
            "source_lines": self._source_lines(since, now),
            "earlier": [self._view(s) for s in chosen.earlier],
            "max_age": f"{self._settings.slack.alert_max_age_hours:g}",
            "chart_src": f"cid:{charts.CHART_CID}" if png else None,
            "trend": trend_text,
        }
        return Digest(
            recipient=recipient,
            day=day,
            subject=self._subject(day, len(ordered) + len(chosen.earlier)),
            text=self._env.get_template("digest.txt.j2").render(context),
            html=self._env.get_template("digest.html.j2").render(context),
            stories=ordered,
            groups=tuple(groups),
            cutoff=now,
            since=since,
            earlier=chosen.earlier,
            chart_png=png,
            trend_text=tuple(trend_text),
        )

    def send(self, recipient: str, now: datetime) -> bool:
        """Send today's digest to one recipient unless already sent (or being sent by another notifier, which
        holds the store's claim); True if it went out now."""
        day = self.day(now)
        cutoff = self._store.claim_digest(day, recipient, self.owner, now, now, now - DIGEST_LEASE)
        if cutoff is None:
            return False
        try:
            if self._store.digest_state(day, recipient) == "pending":
                log.warning("digest %s for %s: an earlier attempt may have reached the server; resending with the "
                            "same Message-ID so a duplicate is recognisable", day, recipient)
            digest = self.build(recipient, cutoff)
            self._store.record_digest(day, recipient, "pending", cutoff=cutoff, sent_at=None)
            ref = self._transport.deliver(digest, self._digest.sender)
            self._store.record_digest(day, recipient, "sent", cutoff=cutoff, sent_at=now)
        finally:
            self._store.release_digest(day, recipient, self.owner)
        log.info("digest %s sent to %s: %d stories (%s)", day, recipient, len(digest.stories), ref)
        return True

    def send_due(self, now: datetime) -> list[str]:
        """Send to every due recipient; one failing recipient does not stop the others.

        Returns who got a digest. After trying everyone, raises TransientError if any send may
        succeed later (the caller retries; those already sent are skipped), else PermanentError.
        """
        return send_each(self.due(now), lambda recipient: self.send(recipient, now), "digest", "sent")

    def preview(self, now: datetime, path: Path) -> Digest:
        """Render the first recipient's digest (or a generic one) to an HTML file; sends and records nothing."""
        recipients = self.recipients()
        digest = self.build(recipients[0] if recipients else "preview", now)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html_with_chart_file(digest, path), encoding="utf-8")
        return digest

    # -- rendering helpers --------------------------------------------------------------------
    def _source_lines(self, since: datetime, now: datetime) -> list[str]:
        """One line per source alert (broken, recovered) decided in (since, now]: the "소스 상태" section."""
        from notifiers.source_alerts import describe  # here: source_alerts imports console, which imports us

        return [describe(alert, self._settings.timezone) for alert in self._store.source_alerts_between(since, now)]

    def _subject(self, day: str, count: int) -> str:
        try:
            subject = self._digest.subject.format(date=day, count=count)
        except (KeyError, IndexError, ValueError) as exc:
            log.error("digest.subject %r is not a valid template ({date} and {count} only): %s; using the default",
                      self._digest.subject, exc)
            subject = DEFAULT_SUBJECT.format(date=day, count=count)
        return fmt.one_line(fmt.strip_bidi(subject))[:SUBJECT_CHARS]

    def _view(self, story: Story) -> dict[str, Any]:
        lead = story.lead
        raw = story.snippet[: fmt.SNIPPET_CHARS]
        spans = fmt.valid_spans(raw, story.highlights, story.id)
        snippet = fmt.one_line(fmt.strip_bidi(fmt.marked(raw, spans)))  # the text part marks matches 【like this】
        return {
            "headline": fmt.one_line(fmt.strip_bidi(lead.title))[: fmt.HEADLINE_CHARS] or "(제목 없음)",
            "url": fmt.reader_url(lead.url),
            "carried": story.carried_by,
            "outlets": [fmt.one_line(fmt.strip_bidi(o)) for o in story.outlets] or [lead.outlet],
            "published": fmt.local_time(lead.published_at or story.first_seen, self._settings.timezone),
            "terms": list(story.terms),
            "snippet_text": snippet,
            "snippet_html": highlight_html(raw, spans),
        }


def html_with_chart_file(digest: Digest, html_path: Path) -> str:
    """The digest's HTML for a file: the chart written beside it as a PNG and linked by name instead of cid:."""
    if not digest.chart_png:
        return digest.html
    png = html_path.with_suffix(".png")
    png.parent.mkdir(parents=True, exist_ok=True)
    png.write_bytes(digest.chart_png)
    return digest.html.replace(f"cid:{charts.CHART_CID}", png.name)


def earliest(story: Story) -> datetime:
    """When the story's earliest copy was published (else first seen): its age for alerts and the digest."""
    return story.lead.published_at or story.lead.fetched_at or story.first_seen


def _prominence(story: Story) -> tuple[int, int, float]:
    return (-story.carried_by, -story.copies, -earliest(story).timestamp())


def subscription(settings: Settings, subscriber: str) -> Callable[[Story], bool]:
    """Whether ``subscriber`` (an address or a Slack channel) wants a story: its terms or rules, else all."""
    found = [s for s in settings.digest.subscriptions if s.to == subscriber]
    if not found:
        return lambda story: True
    terms = {t for s in found for t in s.terms}
    rules = {r for s in found for r in s.rules}
    return lambda story: bool(terms & set(story.terms) or rules & set(story.rules))


def subscribed_terms(settings: Settings, subscriber: str) -> list[str]:
    """The terms a subscriber's chart shows: its subscribed terms (or the rules' terms), else every term."""
    every = [t.name for t in settings.watchlist.terms]
    found = [s for s in settings.digest.subscriptions if s.to == subscriber]
    if not found:
        return every
    rules = {r.name: r for r in settings.watchlist.rules}
    wanted = {t for s in found for t in s.terms}
    for name in (r for s in found for r in s.rules):
        wanted |= set(rules[name].all) | set(rules[name].any)
    return [t for t in every if t in wanted] or every


def group_by_term(stories: Sequence[Story], term_order: Sequence[str]) -> list[DigestGroup]:
    """Each story under its first term in watchlist order; groups in that order; most-carried first."""
    rank = {term: i for i, term in enumerate(term_order)}

    def first_term(story: Story) -> str:
        return min(story.terms, key=lambda t: (rank.get(t, len(rank)), t)) if story.terms else "기타"

    buckets: dict[str, list[Story]] = {}
    for story in stories:
        buckets.setdefault(first_term(story), []).append(story)

    def prominence(story: Story) -> tuple[int, int, float]:
        when = story.lead.published_at or story.first_seen
        return (-story.carried_by, -story.copies, -when.timestamp())

    order = sorted(buckets, key=lambda t: (rank.get(t, len(rank)), t))
    return [DigestGroup(term, tuple(sorted(buckets[term], key=prominence))) for term in order]


def highlight_html(snippet: str, spans: Sequence[tuple[int, int]]) -> Markup:
    """Escape the snippet first, then wrap the highlight spans in <b>: markup never comes from the article."""
    out = Markup("")
    pos = 0
    for start, end in spans:
        out += escape(_clean(snippet[pos:start])) + Markup("<b>") + escape(_clean(snippet[start:end])) + Markup("</b>")
        pos = end
    return out + escape(_clean(snippet[pos:]))


def _clean(text: str) -> str:
    # Like one_line, but keeps edge spaces so the words either side of a <b> stay apart.
    return fmt.strip_bidi(fmt.flatten(text))
