"""The state store's contract: everything that must survive a restart and that the roles share.

Collectors keep HTTP validators and the ids they have published; the grouping stage keeps its
decisions (one row per article, with the article's signature, so a stand-by rebuilds the same
index) and the story records; notifiers keep the idempotency key of every alert and digest (the
outbox). Two implementations pass one contract suite (tests/contracts/test_store.py): SQLite, one
file beside the embedded bus, and PostgreSQL, shared by roles on several hosts.

Every write method is durable when it returns, or raises: ``StateError`` when the store cannot be
written at all (full or read-only disk, refused credentials: the stage stops without committing its
input), ``TransientError`` when it is busy or unreachable for a while (the runner retries). The
grouping stage writes a whole batch in one transaction (``commit_grouping``): decisions, story
records and memberships together, fenced by the writer's claim.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from newsradar.events import Article, Story


@dataclass(frozen=True)
class StoryWrite:
    """One change to the story records, applied in order with the others of its batch.

    ``story`` is the story's new state. ``article_id`` names an article that joined it, recorded as a
    member; ``absorbed_id`` names a story found to be the same event and folded into it: that story's
    members become ``story``'s, its record goes, its alerts are handed over to ``story`` on every
    channel where ``story`` has none yet, and ``story`` counts as relevant from the earlier of the two.
    ``copy`` (issue 17) records the joining article's outlet, headline, link and times (idempotent, by
    article id), so the dashboard can list a story's copies; absorbed members' copies follow them.
    """

    story: Story
    article_id: str = ""
    absorbed_id: str = ""
    copy: Article | None = None  # issue 17: the joining article, kept as a StoryCopy for the dashboard


def in_runs(writes: Sequence[StoryWrite]) -> Iterator[StoryWrite | list[StoryWrite]]:
    """A batch's story writes in order: runs of writes that fold nothing, which a store writes together (see
    ``latest``), and each write that folds a story into another on its own (it keeps its own statements)."""
    run: list[StoryWrite] = []
    for write in writes:
        if not write.absorbed_id:
            run.append(write)
            continue
        if run:
            yield run
            run = []
        yield write
    if run:
        yield run


AlertRecord = tuple[str, str | None, int]  # (state, ref, outlets shown) of one (story, channel) alert


def claim_each(execute: Callable[[str, tuple[Any, ...]], Any], sql: tuple[str, str, str],
               claims: Sequence[tuple[str, str, str, int]], owner: str, until: float, now: float
               ) -> list[tuple[bool, AlertRecord | None]]:  # fmt: skip
    """``StateStore.claim_alerts`` inside a transaction the caller holds, for either store: ``execute`` runs one
    statement in it, ``sql`` is the store's own (take a lease, read an alert, record it 'pending')."""
    take, read, pending = sql
    out: list[tuple[bool, AlertRecord | None]] = [(False, None)] * len(claims)
    for at in sorted(range(len(claims)), key=lambda i: claims[i][0]):  # key order: no two wait in a cycle
        key, story_id, channel, outlets = claims[at]
        if execute(take, (key, owner, until, now, None)).rowcount != 1:
            continue
        row = execute(read, (story_id, channel)).fetchone()
        if row is None:
            execute(pending, (story_id, channel, outlets))
        out[at] = (True, None if row is None else (row[0], row[1], int(row[2])))
    return out


def latest(run: Sequence[StoryWrite]) -> list[Story]:
    """Each story of a run of writes once, in its last state. A story record is replaced by each write, so the
    earlier states of one transaction would only be overwritten; and a story's terms only accumulate within a
    batch, so its last state is relevant (has terms) if any was. On the real June stream four writes in ten
    repeat a story of their batch of 500."""
    return list({write.story.id: write.story for write in run}.values())


@dataclass(frozen=True)
class GroupingDecision:
    """One grouping decision as it is recorded: the article, its story, its encoded signature and time
    (seconds), the stories it showed to be the same event (relabelled as ``story_id``), and whether it
    is a round-up that started its story."""

    article_id: str
    story_id: str
    signature: bytes
    t: float
    absorbed: tuple[str, ...] = ()
    roundup: bool = False


@dataclass(frozen=True)
class GroupingRow:
    """A recorded decision as the index replays it."""

    article_id: str
    story_id: str
    signature: bytes


@dataclass(frozen=True)
class PollState:
    """A source's adaptive polling state (issue 19): its current interval (seconds), its estimated publishing
    rate (new items per second, an exponential average; None before the first poll), its consecutive
    parse failures, and when it was last polled (epoch seconds)."""

    interval: float
    rate: float | None = None
    failures: int = 0
    last_poll_at: float | None = None


class StateStore(ABC):
    """Durable pipeline state. Implementations are thread-safe and may be shared by several processes."""

    name: str  # where it lives, for log lines and errors (a path, or a DSN without its password)

    # -- collectors: HTTP validators and seen ids --------------------------------------------------
    @abstractmethod
    def validators(self, source: str, url: str) -> tuple[str | None, str | None]:
        """(ETag, Last-Modified) last seen for this URL, for a conditional GET."""

    @abstractmethod
    def set_validators(self, source: str, url: str, etag: str | None, last_modified: str | None) -> None:
        """Remember the validators of the response just handled."""

    @abstractmethod
    def is_seen(self, source: str, item_id: str) -> bool:
        """Whether ``source`` has published ``item_id`` already."""

    @abstractmethod
    def seen_among(self, source: str, item_ids: Sequence[str]) -> set[str]:
        """Those of ``item_ids`` that ``source`` has published already: a poll's entries asked at once (one
        round trip to a database server, not one per entry)."""

    @abstractmethod
    def mark_seen(self, source: str, item_ids: list[str], when: datetime) -> None:
        """Remember these ids (one transaction); called only after the items are durably on the bus."""

    @abstractmethod
    def prune_seen(self, older_than: timedelta, now: datetime) -> int:
        """Forget seen ids older than the retention (by time, not by count); returns how many.

        URL claims (``claim_urls``) older than the retention go too, and past days' quota counters."""

    # -- grouping: decisions and story records -----------------------------------------------------
    @abstractmethod
    def story(self, story_id: str) -> Story | None:
        """The story record, or None (never saved, folded into another, or pruned)."""

    @abstractmethod
    def story_has_article(self, story_id: str, article_id: str) -> bool:
        """Whether the article is recorded as a member of the story."""

    @abstractmethod
    def write_stories(self, writes: Sequence[StoryWrite], now: datetime) -> None:
        """Apply story writes in order, in one transaction."""

    def save_story(self, story: Story, article_id: str, now: datetime) -> None:
        """Store the story and the membership of ``article_id`` in one transaction."""
        self.write_stories([StoryWrite(story, article_id=article_id)], now)

    def absorb_story(self, survivor: Story, absorbed_id: str, now: datetime) -> None:
        """Fold story ``absorbed_id`` into ``survivor`` (already merged by the caller), in one transaction."""
        self.write_stories([StoryWrite(survivor, absorbed_id=absorbed_id)], now)

    @abstractmethod
    def claim_grouping(self, writer: str) -> bool:
        """Record ``writer`` as the grouper writing story state; True if another writer had taken over.

        A stand-by grouper that takes the articles partition over uses this to know that its in-memory
        index is stale and must be rebuilt from the recorded decisions before it assigns anything.
        """

    @abstractmethod
    def commit_grouping(self, writer: str, decisions: Sequence[GroupingDecision], writes: Sequence[StoryWrite],
                        now: datetime) -> bool:  # fmt: skip
        """Record a batch of grouping decisions and its story writes in one transaction, if ``writer`` still
        holds the claim; False (nothing written) when another grouper has claimed since.

        A decision already recorded for its article is kept as it was (a redelivery). Between the writes that
        fold a story, each story's record is written once, in its last state (``in_runs``, ``latest``).
        """

    @abstractmethod
    def grouping_rows(self) -> Iterator[GroupingRow]:
        """Every recorded decision in decision order, to rebuild the index (a signature blanked by a new
        signature version is ``b""``: the article is known, but no longer comparable)."""

    @abstractmethod
    def grouping_story_of(self, article_id: str) -> str | None:
        """The story recorded for ``article_id`` (even when its signature is gone), or None."""

    @abstractmethod
    def grouping_merged_by(self, article_id: str) -> tuple[str, ...]:
        """The stories that the decision on ``article_id`` merged into its own, sorted."""

    @abstractmethod
    def grouping_survivors(self) -> dict[str, str]:
        """Every recorded merge: absorbed story id -> the story it is now part of."""

    @abstractmethod
    def grouping_roundups(self) -> set[str]:
        """The stories that a round-up started."""

    @abstractmethod
    def grouping_evict(self, horizon: float) -> int:
        """Delete decisions, merges and round-up marks older than ``horizon`` (seconds); returns decisions."""

    @abstractmethod
    def grouping_signature_version(self, version: str) -> bool:
        """Make ``version`` the recorded signature version; when another one was recorded, blank the old
        signatures (decisions keep answering ``grouping_story_of``, but are not replayed) and return True."""

    @abstractmethod
    def relevant_stories(self, after: datetime | None, until: datetime) -> list[Story]:
        """Stories that became relevant in (after, until], for the digest, oldest first."""

    @abstractmethod
    def prune_stories(self, older_than: timedelta, now: datetime) -> int:
        """Forget stories not updated within the retention; returns how many."""

    # -- notifiers: the outbox (alert and digest idempotency keys) ----------------------------------
    @abstractmethod
    def alert(self, story_id: str, channel: str) -> tuple[str, str | None, int] | None:
        """(state, ref, outlets shown) of the alert for (story, channel), or None if never attempted."""

    @abstractmethod
    def record_alert(self, story_id: str, channel: str, state: str, ref: str | None, outlets: int,
                     durable: bool = True) -> None:  # fmt: skip
        """state: 'pending' before the send, 'sent' once delivered.

        ref: "<channel id>/<ts>" for Slack bot messages, "webhook" for webhooks, a file path for the console.
        ``durable=False`` (a 'sent' record only): the write may wait for the caller's next ``sync`` to reach the
        disk; every reader sees it at once. 'pending' records are always durable: they keep a post from
        being made twice after a crash.
        """

    @abstractmethod
    def claim_alerts(self, claims: Sequence[tuple[str, str, str, int]], owner: str, until: datetime, now: datetime
                     ) -> list[tuple[bool, AlertRecord | None]]:  # fmt: skip
        """Claim many first alerts in one durable transaction. For each (lease key, story id, channel, outlets):
        take the lease as ``take_lease`` does (no ``replacing``); where it was taken and the alert has no record,
        record it 'pending' with ``outlets``. Returns, per claim in order, whether the lease was taken and the
        alert's record before the claim (None: none, or the lease was not taken).

        Why: a flush of many first alerts then costs one commit (one fsync, one turn at the write lock) before
        its posts, not a lease, a read and a durable 'pending' write each. Leases are taken in key order, so
        two notifiers claiming overlapping batches never wait on each other in a cycle.
        """

    @abstractmethod
    def settle_alerts(self, sent: Sequence[tuple[str, str, str, int]], unsent: Sequence[tuple[str, str]],
                      leases: Sequence[str], owner: str) -> None:
        """After a batch claimed by ``claim_alerts``, in one transaction: record each (story id, channel, ref,
        outlets) of ``sent`` 'sent'; forget the 'pending' record of each (story id, channel) of ``unsent`` (the
        batch stopped before posting it, so it was never sent: it is claimed afresh next time, with no history
        lookup); give back ``owner``'s ``leases``. Relaxed like a 'sent' record: durable at the next ``sync``.
        """

    @abstractmethod
    def sync(self) -> None:
        """Make every write made so far durable (e.g. before a notifier's deliveries are acknowledged).

        A no-op where every commit is durable already (PostgreSQL).
        """

    @abstractmethod
    def digest_state(self, day: str, recipient: str) -> str | None:
        """'pending' or 'sent' for the digest of ``day`` to ``recipient``, or None."""

    @abstractmethod
    def record_digest(self, day: str, recipient: str, state: str, cutoff: datetime, sent_at: datetime | None) -> None:
        """state: 'pending' before the send, 'sent' after the server accepted the message."""

    @abstractmethod
    def last_digest_cutoff(self, recipient: str) -> datetime | None:
        """The cut-off of the last digest actually sent to ``recipient`` (stories after it are due)."""

    # -- leases: one instance of a role at a time does a piece of work ---------------------------------
    @abstractmethod
    def take_lease(self, key: str, owner: str, until: datetime, now: datetime, replacing: str | None = None) -> bool:
        """Take (or renew) the lease ``key`` for ``owner`` until ``until``; False while another owner's
        lease runs (its ``until`` is after ``now``), unless that owner is ``replacing``. Atomic: of two
        instances asking at once, one wins.

        Notifiers on several hosts take one before a digest or a first alert is sent, so two of them never
        send the same thing; a lease that ran out (its holder died) passes to the next asker, and so does one
        whose holder is known to be dead (``replacing``: a process of this host that no longer exists).
        """

    @abstractmethod
    def lease_holder(self, key: str) -> str | None:
        """The owner of the lease ``key`` (running or run out), or None when there is none."""

    @abstractmethod
    def drop_lease(self, key: str, owner: str) -> None:
        """Give the lease back (only if ``owner`` holds it), once the work it guarded is recorded."""
    # -- issue 19: API quotas and URL claims ----------------------------------------------------------
    @abstractmethod
    def spend_quota(self, key: str, day: str, calls: int, budget: int) -> int | None:
        """Count ``calls`` against the budget of ``key`` for ``day``, only if the day's total stays within it.

        ``key`` names a rationed API account (the Naver collectors use the *name* of the environment variable
        holding the client id, never the id itself); ``day`` is the API's own calendar day ('YYYY-MM-DD',
        Korean time for Naver). Returns the day's new total, or None when ``calls`` would take it over
        ``budget`` (nothing is written). Called before every rationed request, by collectors on any host:
        one conditional UPDATE in one transaction, so two callers never spend the same last call.
        """

    @abstractmethod
    def quota_used(self, key: str, day: str) -> int:
        """Calls counted against ``key`` on ``day`` so far (0 when none), for health."""

    @abstractmethod
    def claim_urls(self, claims: Sequence[tuple[str, Sequence[str]]], now: datetime) -> list[str]:
        """Make each claim's URLs name one item: ``claims`` holds (item id, canonical URLs of that article).

        For each claim, in order: if any of its URLs is already claimed, the id recorded first for them wins;
        otherwise the claim's own id. Its unclaimed URLs are recorded for the winning id (a URL, once claimed,
        keeps its id until pruned with the seen ids). Returns the winning id of each claim. Called by
        collectors on new entries before they are published, so that the publisher's feed entry and the
        Naver News entry of one article (publisher URL + news.naver.com URL) are one item whichever came
        first; one transaction (INSERT ... ON CONFLICT DO NOTHING, then the recorded owner is read back, so
        two collectors claiming one URL at once agree on its id).
        """

    @abstractmethod
    def poll_state(self, source: str) -> PollState | None:
        """The adaptive polling state saved for ``source``, or None (never polled adaptively)."""

    @abstractmethod
    def save_poll_state(self, source: str, state: PollState) -> None:
        """Replace ``source``'s adaptive polling state; written by the collector after every poll of it (one
        collector polls a source at a time, so a plain upsert suffices), read at start-up to resume."""
    # == issue 18: quiet hours (held alerts, roll-ups), digest claims and parts, first polls, trend ==========
    # Held alerts live in the ``alerts`` table with state 'held', so ``write_stories`` hands them over to a
    # survivor like any alert. Releases and digests are *claimed* in one transaction (a conditional UPDATE or
    # INSERT ... ON CONFLICT DO NOTHING), so notifiers on several hosts never send the same thing twice; a
    # claim whose holder died is taken over once it is older than the caller's lease (``stale_before``).
    @abstractmethod
    def hold_alert(self, story_id: str, channel: str, outlets: int, now: datetime) -> bool:
        """Called when a first alert falls in the channel's quiet hours: (story, channel) is recorded 'held'
        (the outbox) at ``now``, unless an alert for it exists already. True if it was held by this call."""

    @abstractmethod
    def held_alerts(self, channel: str | None = None) -> list[tuple[str, str, datetime]]:
        """(story id, channel, held at) of every held alert (of one channel), oldest first. Reads only."""

    @abstractmethod
    def drop_alert(self, story_id: str, channel: str) -> None:
        """Forget a held alert whose story is gone (pruned, or folded into one already alerted there)."""

    @abstractmethod
    def claim_held(self, channel: str, story_ids: Sequence[str], ref: str, now: datetime) -> list[str]:
        """Claim held alerts for a one-by-one release: those of ``story_ids`` still 'held' on ``channel``
        become 'pending' with ``ref`` and ``updated_at`` = ``now`` (one conditional UPDATE). Returns the ids
        this call claimed; an id claimed by another notifier meanwhile is not returned."""

    @abstractmethod
    def take_over_releases(self, ref: str, stale_before: datetime, now: datetime) -> list[tuple[str, str]]:
        """(story id, channel) of pending alerts with ``ref`` whose claim is older than ``stale_before`` (its
        holder died mid-release); each is re-claimed at ``now`` for this caller only (UPDATE ... RETURNING)."""

    @abstractmethod
    def begin_rollup(self, rollup_id: str, channel: str, story_ids: Sequence[str], now: datetime) -> list[str]:
        """Before a roll-up is posted, in one transaction: the held alerts of ``story_ids`` on ``channel``
        become 'pending' with ref 'rollup:<id>', and the roll-up is recorded 'pending' (claimed at ``now``)
        with the stories this call claimed, which it returns (none: no roll-up is recorded)."""

    @abstractmethod
    def take_over_rollups(self, stale_before: datetime, now: datetime) -> list[tuple[str, str, list[str]]]:
        """(id, channel, story ids) of pending roll-ups claimed before ``stale_before`` (their poster died);
        each is re-claimed at ``now`` for this caller only, to be looked up in Slack's history and finished."""

    @abstractmethod
    def pending_rollups(self) -> list[tuple[str, str, list[str]]]:
        """(id, channel, story ids) of every roll-up begun and not finished, oldest first. Reads only."""

    @abstractmethod
    def finish_rollup(self, rollup_id: str, ref: str, outlets: dict[str, int]) -> None:
        """After the roll-up was delivered: it is 'sent' with ``ref`` ("<channel id>/<ts>"), and each story's
        alert on its channel is 'sent' with that ref and the outlets shown (one transaction)."""

    @abstractmethod
    def rollup_stories(self, ref: str) -> list[str] | None:
        """The story ids of the sent roll-up whose message is ``ref``, or None when ``ref`` is no roll-up."""

    @abstractmethod
    def claim_digest(self, day: str, recipient: str, owner: str, cutoff: datetime, now: datetime,
                     stale_before: datetime) -> datetime | None:  # fmt: skip
        """Claim the digest of ``day`` for ``recipient`` (an address, or "slack:<channel>") before sending it.

        One transaction: None when that digest is recorded 'sent', or another owner holds a claim made at or
        after ``stale_before``; otherwise ``owner`` holds the claim (claimed at ``now``) and the cut-off is
        returned: ``cutoff`` for a new claim, the first claim's cut-off when a dead owner's is taken over
        (so a resumed digest keeps its selection). The same owner may claim again (a retry)."""

    @abstractmethod
    def release_digest(self, day: str, recipient: str, owner: str) -> None:
        """Drop ``owner``'s claim once the digest is recorded 'sent', or after a failed attempt (so another
        attempt, here or elsewhere, may claim it at once)."""

    @abstractmethod
    def digest_part(self, day: str, recipient: str, part: str) -> tuple[str, str | None] | None:
        """(state, ref) of one part of a split Slack digest (a numbered message or "chart"), or None."""

    @abstractmethod
    def record_digest_part(self, day: str, recipient: str, part: str, state: str, ref: str | None) -> None:
        """state: 'pending' just before the part is posted, 'sent' (with its ref) once Slack accepted it;
        'skipped' or 'failed' for a chart not uploaded. Written only by the digest's claim holder."""

    @abstractmethod
    def first_poll(self, source: str) -> datetime | None:
        """When the first successful poll of ``source`` started (its items' fetched_at), or None."""

    @abstractmethod
    def record_first_poll(self, source: str, started: datetime) -> None:
        """After a source's first poll is on the bus; a later call changes nothing (the first one stays)."""

    @abstractmethod
    def stories_touched_since(self, after: datetime) -> list[Story]:
        """Relevant stories updated at or after ``after`` (the trend chart's window). Reads only."""

    # -- everything ----------------------------------------------------------------------------------
    @abstractmethod
    def stats(self) -> dict[str, int]:
        """Row counts for health and tests."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store is not used afterwards."""

    # == issue 17: dashboard reads, story copies, source health and its alert outbox ====================
    # Writers: the grouping stage (StoryWrite.copy, in its batch transaction), the collector stage
    # (save_source_status), the source-alert sender (claim_source_alert, mark_source_alert_sent), the
    # hourly maintenance (prune_issue_17). Everything else only reads: the dashboard's handle never writes.

    @abstractmethod
    def ping(self) -> None:
        """Raise StateError (or TransientError) unless the store answers a trivial query (readiness)."""

    @abstractmethod
    def story_copies(self, story_id: str) -> list[StoryCopy]:
        """Every recorded copy of a member of the story, earliest published (else fetched) first."""

    @abstractmethod
    def recent_stories(
        self, *, term: str | None = None, start: datetime | None = None, end: datetime | None = None,
        query: str | None = None, limit: int = 50, offset: int = 0,
    ) -> list[Story]:
        """Relevant stories (they matched a term), newest first sighting first, then by id; optionally only
        those with ``term``, first seen in [start, end), and a lead headline containing ``query``
        (case-insensitive for Latin letters)."""

    @abstractmethod
    def story_alerts(self, story_id: str) -> list[tuple[str, str, str | None, int]]:
        """(channel, state, ref, outlets shown) of every alert of a story, by channel."""

    @abstractmethod
    def source_status(self, source: str) -> SourceStatus | None:
        """The stored health of one source, or None before its first recorded poll."""

    @abstractmethod
    def source_statuses(self) -> dict[str, SourceStatus]:
        """The stored health of every source ever polled, by name."""

    @abstractmethod
    def save_source_status(
        self, status: SourceStatus, expect_version: int, *, poll: SourcePoll | None = None,
        alert: SourceAlert | None = None,
    ) -> bool:
        """Compare-and-set a source's health, with the poll that changed it and the alert it opens, in one
        transaction.

        Writes only if the stored version is still ``expect_version`` (0: no row yet), then stores
        ``status`` as version + 1, appends ``poll`` to the poll log and queues ``alert`` (state 'new';
        an alert id already queued is left as it is, so a transition decided twice is queued once).
        Returns False, writing nothing, when another writer got there first: the caller re-reads and
        decides again. Called by the collector stage after each poll and by the silence check.
        """

    @abstractmethod
    def items_since(self, since: datetime) -> dict[str, int]:
        """New items published per source by polls after ``since`` (for "items in the last 24 h")."""

    @abstractmethod
    def source_alerts_to_send(self) -> list[SourceAlert]:
        """Queued ('new') and interrupted ('pending') source alerts, oldest first, for the sender."""

    @abstractmethod
    def claim_source_alert(self, alert_id: str, owner: str, now: datetime, lease: timedelta) -> bool:
        """Take one source alert for sending: True if this caller now holds it ('pending', claimed by
        ``owner`` at ``now``), in one atomic conditional update.

        A 'new' alert is taken by exactly one caller; a 'pending' one (a send began and its outcome is
        unknown) is taken again by the same ``owner`` at once (its own restart, which reconciles before
        sending again), by another owner only when the claim is older than ``lease`` (its sender may still
        be posting). A 'sent' alert is never taken. So two senders on different hosts never both send.
        """

    @abstractmethod
    def mark_source_alert_sent(self, alert_id: str, ref: str, now: datetime) -> None:
        """Record a source alert delivered, with its ref ("<channel id>/<ts>", "webhook", or a file path)."""

    @abstractmethod
    def source_alerts_between(self, after: datetime | None, until: datetime) -> list[SourceAlert]:
        """Source alerts decided in (after, until], oldest first: the digest's "소스 상태" lines."""

    @abstractmethod
    def outbox_pending(self) -> dict[str, int]:
        """Effects begun but not known delivered, by kind: 'alert', 'digest', 'source_alert' (/metrics)."""

    @abstractmethod
    def prune_issue_17(self, older_than: timedelta, now: datetime) -> int:
        """Forget polls and sent source alerts older than the retention, and copies recorded before it that
        no story lists any more; returns how many rows."""


@dataclass(frozen=True)
class StoryCopy:
    """One copy of a story as the grouping stage saw it (for the dashboard's story page)."""

    article_id: str
    outlet: str
    url: str
    title: str
    published_at: datetime | None
    fetched_at: datetime | None


@dataclass(frozen=True)
class SourcePoll:
    """One poll of one source: when, how many new items it published, the error if it failed."""

    at: datetime
    new_items: int
    error: str | None


@dataclass(frozen=True)
class SourceStatus:
    """The health of one source as stored: status 'healthy' | 'failing' | 'silent', and what led there.

    ``incident_since`` is set while an incident (failing or silent) is open: its alert was queued, and its
    one recovery message will be queued when it closes. ``version`` guards concurrent writers.
    """

    source: str
    status: str
    failures: int
    failing_since: datetime | None
    last_error: str | None
    last_poll_at: datetime | None
    last_success_at: datetime | None
    last_item_at: datetime | None
    tracked_since: datetime
    incident_since: datetime | None
    version: int = 0


@dataclass(frozen=True)
class SourceAlert:
    """One queued ops message: kind 'failing' | 'silent' | 'recovered', for one incident of one source.

    ``id`` is "<source>|<kind>|<incident start>", so deciding the same transition twice queues it once.
    state: 'new' (queued), 'pending' (a send began), 'sent'.
    """

    id: str
    source: str
    kind: str
    detail: str
    failures: int
    since: datetime | None
    last_item_at: datetime | None
    created_at: datetime
    state: str = "new"
    ref: str | None = None
