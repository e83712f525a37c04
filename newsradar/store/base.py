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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from newsradar.events import Story


@dataclass(frozen=True)
class StoryWrite:
    """One change to the story records, applied in order with the others of its batch.

    ``story`` is the story's new state. ``article_id`` names an article that joined it, recorded as a
    member; ``absorbed_id`` names a story found to be the same event and folded into it: that story's
    members become ``story``'s, its record goes, its alerts are handed over to ``story`` on every
    channel where ``story`` has none yet, and ``story`` counts as relevant from the earlier of the two.
    """

    story: Story
    article_id: str = ""
    absorbed_id: str = ""


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
    def mark_seen(self, source: str, item_ids: list[str], when: datetime) -> None:
        """Remember these ids (one transaction); called only after the items are durably on the bus."""

    @abstractmethod
    def prune_seen(self, older_than: timedelta, now: datetime) -> int:
        """Forget seen ids older than the retention (by time, not by count); returns how many."""

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

        A decision already recorded for its article is kept as it was (a redelivery).
        """

    @abstractmethod
    def grouping_rows(self) -> Iterator[GroupingRow]:
        """Every recorded decision with a signature, in decision order (to rebuild the index)."""

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
    def record_alert(self, story_id: str, channel: str, state: str, ref: str | None, outlets: int) -> None:
        """state: 'pending' before the send, 'sent' once delivered.

        ref: "<channel id>/<ts>" for Slack bot messages, "webhook" for webhooks, a file path for the console.
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
