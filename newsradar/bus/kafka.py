"""The Kafka bus (kafka-python 3): the same contract as the embedded bus, on a real broker.

Topic and group names carry ``topic_prefix`` so several deployments (or test runs) can share a broker.
The producer is idempotent with acks=all and key partitioning (per-key order holds); consumers commit
only what the caller acknowledged, and a rebalance listener commits acknowledged offsets before a
partition is handed to another member.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from kafka import AsyncConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    InvalidSessionTimeoutError,
    KafkaError,
    RebalanceInProgressError,
    TopicAlreadyExistsError,
    UnknownMemberIdError,
    for_code,
)
from kafka.structs import OffsetAndMetadata, TopicPartition

from newsradar import events
from newsradar.bus.base import Bus, Consumer, Delivery
from newsradar.errors import ConfigError, NewsradarError, PermanentError, TransientError
from newsradar.settings import BusSettings

log = logging.getLogger(__name__)

# kafka-python 3 backs off up to 30 s between reconnects; after a broker restart we want to be back in seconds.
_RECONNECT = {"reconnect_backoff_ms": 100, "reconnect_backoff_max_ms": 5000}

# Commits refused because the group moved on: the deliveries come back to their new owner (at-least-once).
_REBALANCED = (CommitFailedError, IllegalGenerationError, RebalanceInProgressError, UnknownMemberIdError)


def _translate(exc: Exception, doing: str, bootstrap: str) -> NewsradarError:
    """Map a kafka-python error to our tree; the message names the broker and what we were doing."""
    if isinstance(exc, NewsradarError):
        return exc
    detail = str(exc) if str(exc).startswith(type(exc).__name__) else f"{type(exc).__name__}: {exc}"
    text = f"Kafka at {bootstrap}: {doing} failed: {detail}"
    if isinstance(exc, InvalidSessionTimeoutError):
        return ConfigError(
            f"{text} (bus.session_timeout is outside the broker's group.min/max.session.timeout.ms)"
        )
    if isinstance(exc, KafkaError) and not exc.retriable and not isinstance(exc, _REBALANCED):
        return PermanentError(text)
    return TransientError(text)  # unreachable broker, timeouts, leader changes: worth retrying


class KafkaBus(Bus):
    """A producer shared by every publisher, an admin client for topics, one KafkaConsumer per member.

    The ``*_ms`` group timings default to production values; tests pass small ones so hand-overs
    take a second rather than ten.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic_prefix: str = "newsradar.",
        partitions: dict[str, int] | None = None,
        default_partitions: int = 1,
        replication_factor: int = 1,
        client_id: str = "newsradar",
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        max_poll_interval_ms: int = 300_000,
        timeout: float = 30.0,
        compression_type: str = "gzip",
        linger_ms: int = 5,
        max_message_bytes: int = 10 * 1024 * 1024,
        batch_bytes: int = 256 * 1024,
    ) -> None:
        self.bootstrap = bootstrap_servers
        self.prefix = topic_prefix
        self.partition_counts = dict(partitions or {})
        self.default_partitions = default_partitions
        self.replication_factor = replication_factor
        self.client_id = client_id
        self.group_timings = {
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
            "max_poll_interval_ms": max_poll_interval_ms,
        }
        self.timeout = timeout
        self.max_message_bytes = max_message_bytes
        self._known: set[str] = set()  # full topic names known to exist
        self._topics_lock = threading.Lock()
        self._admin: KafkaAdminClient | None = None
        timeout_ms = int(timeout * 1000)
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap_servers,
                client_id=client_id,
                acks="all",
                enable_idempotence=True,  # broker drops retried duplicates; order per partition holds
                retries=2**31 - 1,  # bounded by delivery_timeout_ms instead
                delivery_timeout_ms=timeout_ms,
                request_timeout_ms=max(1000, timeout_ms // 2),
                max_block_ms=timeout_ms,
                bootstrap_timeout_ms=timeout_ms,
                linger_ms=linger_ms,
                compression_type=compression_type,  # gzip: no extra package; lz4/zstd would need one
                max_request_size=max_message_bytes,
                # Record batches of 256 KB, not kafka-python's 16 KB: a stage publishes up to 500 events of about
                # 600 bytes at once, which then fill a few batches instead of dozens. Fewer batches to build,
                # compress and wake the sender thread for: a fifth less CPU per item in the extract+match stage.
                batch_size=batch_bytes,
                **_RECONNECT,
            )
        except Exception as exc:  # kafka-python raises several types here; all mean "no usable broker"
            raise _translate(exc, "connecting the producer", bootstrap_servers) from exc

    @classmethod
    def from_settings(cls, bus: BusSettings) -> KafkaBus:
        """The bus described by the ``bus`` config section (kind: kafka)."""
        session_ms = int(bus.session_timeout * 1000)
        return cls(
            bootstrap_servers=bus.kafka.bootstrap_servers,
            topic_prefix=bus.kafka.topic_prefix,
            partitions=dict(bus.kafka.partitions),
            replication_factor=bus.kafka.replication_factor,
            client_id=bus.kafka.client_id,
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(100, min(3000, session_ms // 3)),
        )

    # -- topics --------------------------------------------------------------------------------
    def full_name(self, topic: str) -> str:
        """The broker-side name of one of our topics."""
        return self.prefix + topic

    def _admin_client(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap,
                client_id=self.client_id,
                request_timeout_ms=int(self.timeout * 1000),
                bootstrap_timeout_ms=int(self.timeout * 1000),
                **_RECONNECT,
            )
        return self._admin

    def ensure_topics(self, partitions: dict[str, int]) -> None:
        wanted = {
            self.full_name(t): int(n) for t, n in partitions.items() if self.full_name(t) not in self._known
        }
        if not wanted:
            return
        with self._topics_lock:
            try:
                self._create_missing(wanted)
            except Exception as exc:
                raise _translate(exc, f"creating topics {sorted(wanted)}", self.bootstrap) from exc
            self._known.update(wanted)

    def ping(self) -> None:
        """Ask the cluster for its topics (raises TransientError when no broker answers)."""
        with self._topics_lock:
            try:
                self._admin_client().list_topics()
            except Exception as exc:
                raise _translate(exc, "listing topics (readiness)", self.bootstrap) from exc

    def _create_missing(self, wanted: dict[str, int]) -> None:
        admin = self._admin_client()
        missing = {name: n for name, n in wanted.items() if name not in set(admin.list_topics())}
        if not missing:
            return
        spec = {
            name: {
                "num_partitions": count,
                "replication_factor": self.replication_factor,
                "configs": {"max.message.bytes": str(self.max_message_bytes)},  # room for whole article pages
            }
            for name, count in missing.items()
        }
        result = admin.create_topics(spec, timeout_ms=int(self.timeout * 1000), raise_errors=False)
        for topic in result["topics"]:
            error = for_code(topic["error_code"])
            # Another process may have created it a moment ago: that is success.
            if topic["error_code"] and error is not TopicAlreadyExistsError:
                raise error(f"topic {topic['name']}: {topic.get('error_message') or error.__name__}")
        admin.wait_for_topics(list(missing), timeout_ms=int(self.timeout * 1000))
        log.info("kafka: created topics %s on %s", sorted(missing), self.bootstrap)

    def _ensure_known(self, topics: Iterable[str]) -> None:
        """Create unknown topics on first use, as the embedded bus does, with the configured counts."""
        unknown = {t: self.partition_counts.get(t, self.default_partitions) for t in topics}
        self.ensure_topics(unknown)

    # -- publishing ----------------------------------------------------------------------------
    def publish(self, topic: str, key: str, event: Any) -> None:
        self.publish_many(topic, [(key, event)])

    def publish_many(self, topic: str, items: Iterable[tuple[str, Any]]) -> None:
        encoded = [(key, events.encode(event)) for key, event in items]
        if not encoded:
            return
        self._ensure_known([topic])
        name = self.full_name(topic)
        try:
            futures = [
                self._producer.send(name, key=key.encode("utf-8"), value=payload) for key, payload in encoded
            ]
            self._producer.flush(timeout=self.timeout)
            for future in futures:
                future.get(timeout=self.timeout)  # raises the broker's error for that record
        except Exception as exc:
            raise _translate(exc, f"publishing {len(encoded)} event(s) to {name}", self.bootstrap) from exc

    # -- consuming -----------------------------------------------------------------------------
    def consumer(self, topics: str | Sequence[str], group: str) -> Consumer:
        names = [topics] if isinstance(topics, str) else list(topics)
        self._ensure_known(names)
        return KafkaMember(self, names, group)

    def close(self) -> None:
        try:
            self._producer.flush(timeout=self.timeout)
        finally:
            self._producer.close(timeout=self.timeout)
            if self._admin is not None:
                self._admin.close()
                self._admin = None


class _CommitOnRevoke(AsyncConsumerRebalanceListener):
    """Before partitions go to another member, commit what the caller acknowledged on them.

    Async so the commit awaits on kafka-python's IO loop instead of blocking it (and heartbeats).
    """

    def __init__(self, member: KafkaMember) -> None:
        self.member = member

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        offsets = self.member.take_pending(revoked)
        if not offsets:
            return
        try:
            await self.member.kafka_consumer.commit_async(offsets)
            log.info("kafka: group %s committed %s before hand-over", self.member.group_id, _show(offsets))
        except (KafkaError, OSError) as exc:
            # The deliveries come back to the next owner: duplicates, not loss.
            log.warning(
                "kafka: group %s could not commit %s before hand-over (%s: %s); they will be redelivered",
                self.member.group_id,
                _show(offsets),
                type(exc).__name__,
                exc,
            )

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.debug("kafka: group %s assigned %s", self.member.group_id, sorted(assigned))

    async def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        # Evicted (missed heartbeats): the broker would refuse a commit now.
        dropped = self.member.take_pending(lost)
        if dropped:
            log.warning(
                "kafka: group %s lost %s uncommitted; they will be redelivered",
                self.member.group_id,
                _show(dropped),
            )


def _show(offsets: dict[TopicPartition, OffsetAndMetadata]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]@{om.offset}" for tp, om in sorted(offsets.items()))


class KafkaMember(Consumer):
    """One member of a consumer group. Not thread-safe: one member per thread, like KafkaConsumer."""

    def __init__(self, bus: KafkaBus, topics: list[str], group: str) -> None:
        self.bus = bus
        self.group_id = bus.prefix + group
        self._acked: dict[TopicPartition, int] = {}  # next offset to commit: highest acknowledged + 1
        self._pending: set[TopicPartition] = set()  # acknowledged but not yet accepted by the broker
        self._lock = threading.Lock()
        try:
            self.kafka_consumer = KafkaConsumer(
                bootstrap_servers=bus.bootstrap,
                client_id=bus.client_id,
                group_id=self.group_id,
                enable_auto_commit=False,  # only what the caller acknowledged is ever committed
                auto_offset_reset="earliest",  # a new group reads the whole backlog, as the embedded bus
                request_timeout_ms=max(30_000, int(bus.timeout * 1000)),
                bootstrap_timeout_ms=int(bus.timeout * 1000),
                **bus.group_timings,
                **_RECONNECT,
            )
            names = [bus.full_name(t) for t in topics]
            # Know the topics' partitions before joining: a join made before the metadata arrives is
            # assigned nothing and needs a second rebalance, which on a loaded machine kafka-python
            # 3.0.12 once never finished (the member sat with no partitions).
            for name in names:
                self.kafka_consumer.partitions_for_topic(name)
            self.kafka_consumer.subscribe(names, listener=_CommitOnRevoke(self))
        except Exception as exc:
            raise _translate(exc, f"joining group {self.group_id}", bus.bootstrap) from exc
        self._closed = False

    def poll(self, max_records: int = 100, timeout: float = 1.0) -> list[Delivery]:
        if self._closed:
            raise RuntimeError("consumer is closed")
        try:
            batches = self.kafka_consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        except Exception as exc:
            raise _translate(exc, f"polling for group {self.group_id}", self.bus.bootstrap) from exc
        cut = len(self.bus.prefix)
        deliveries = []
        for tp, records in batches.items():
            topic = tp.topic[cut:] if tp.topic.startswith(self.bus.prefix) else tp.topic
            for record in records:
                key = record.key.decode("utf-8", errors="replace") if record.key is not None else ""
                deliveries.append(
                    Delivery(topic, tp.partition, record.offset, key, bytes(record.value or b""))
                )
        return deliveries

    def commit(self, deliveries: Sequence[Delivery]) -> None:
        owned = self.kafka_consumer.assignment()
        touched: set[TopicPartition] = set()
        with self._lock:
            for d in deliveries:
                tp = TopicPartition(self.bus.full_name(d.topic), d.partition)
                if tp not in owned:
                    # Committing here would overwrite the new owner's progress; it redelivers instead.
                    log.info(
                        "kafka: group %s no longer owns %s[%d]; offset %d not committed",
                        self.group_id,
                        d.topic,
                        d.partition,
                        d.offset,
                    )
                    continue
                self._acked[tp] = max(self._acked.get(tp, 0), d.offset + 1)
                self._pending.add(tp)
                touched.add(tp)
            offsets = {tp: OffsetAndMetadata(self._acked[tp], "", -1) for tp in touched}
        if not offsets:
            return
        try:
            self.kafka_consumer.commit(offsets, timeout_ms=int(self.bus.timeout * 1000))
        except _REBALANCED as exc:
            # Still pending: the revocation listener retries while we are the recognised owner.
            log.warning(
                "kafka: group %s commit of %s refused during a rebalance (%s); retrying at hand-over",
                self.group_id,
                _show(offsets),
                type(exc).__name__,
            )
            return
        except Exception as exc:
            raise _translate(
                exc, f"committing {_show(offsets)} for group {self.group_id}", self.bus.bootstrap
            ) from exc
        with self._lock:
            # A later commit() (or the listener) may have moved on meanwhile; only clear what this one covered.
            self._pending.difference_update(tp for tp in touched if self._acked.get(tp) == offsets[tp].offset)

    def take_pending(self, partitions: set[TopicPartition]) -> dict[TopicPartition, OffsetAndMetadata]:
        """Acknowledged-but-uncommitted offsets on ``partitions``, forgotten here (the listener commits them)."""
        with self._lock:
            offsets = {
                tp: OffsetAndMetadata(self._acked[tp], "", -1) for tp in partitions if tp in self._pending
            }
            for tp in partitions:
                self._pending.discard(tp)
                self._acked.pop(tp, None)
        return offsets

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            # Leaving the group runs the listener, which commits anything acknowledged but pending.
            self.kafka_consumer.close(autocommit=False, timeout_ms=int(self.bus.timeout * 1000))
        except (KafkaError, OSError) as exc:
            log.warning(
                "kafka: group %s left uncleanly (%s: %s); its partitions move after the session timeout",
                self.group_id,
                type(exc).__name__,
                exc,
            )
