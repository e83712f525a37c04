"""The bus interface every implementation (embedded SQLite, Kafka) honours.

Contract (checked by tests/contracts/test_bus.py against both implementations):
- ``publish`` returns only once the event is durable.
- Events with the same key are delivered in publish order (they share a partition).
- ``consume``rs in one group share the partitions; each delivery stays owned by its
  consumer until ``commit`` covers it. Committing a delivery commits everything
  before it in its partition (Kafka semantics), so commit in order, after the
  effect of the delivery is durable.
- Deliveries not committed come back after a restart or to another member of the
  group after a hand-over (at-least-once): effects must be idempotent.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from newsradar import events

# Topic names used by the pipeline; partition counts come from config.
RAW = "raw-items"
ARTICLES = "articles"
STORIES = "story-updates"
DEAD_LETTER = "dead-letter"
TOPICS = (RAW, ARTICLES, STORIES, DEAD_LETTER)


@dataclass
class Delivery:
    """One message handed to a consumer; decode lazily so a bad payload is the consumer's to dead-letter."""

    topic: str
    partition: int
    offset: int
    key: str
    payload: bytes
    _event: Any = field(default=None, repr=False)

    @property
    def event(self) -> Any:
        """The decoded event; raises ValueError on a payload no version of us understands."""
        if self._event is None:
            self._event = events.decode(self.payload)
        return self._event


class Consumer(abc.ABC):
    """A member of a consumer group reading one or more topics."""

    @abc.abstractmethod
    def poll(self, max_records: int = 100, timeout: float = 1.0) -> list[Delivery]:
        """Return up to ``max_records`` deliveries, waiting at most ``timeout`` seconds for the first."""

    @abc.abstractmethod
    def commit(self, deliveries: Sequence[Delivery]) -> None:
        """Mark these deliveries (and all earlier ones in their partitions) done; call after the effect is durable."""

    @abc.abstractmethod
    def close(self) -> None:
        """Leave the group (its partitions go to other members); uncommitted deliveries will come back."""

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Bus(abc.ABC):
    """A durable, partitioned, at-least-once message bus."""

    @abc.abstractmethod
    def ensure_topics(self, partitions: dict[str, int]) -> None:
        """Create missing topics with the given partition counts (existing ones are left as they are)."""

    @abc.abstractmethod
    def publish(self, topic: str, key: str, event: Any) -> None:
        """Append an event; returns once it is durable. Same key, same partition, same order."""

    def publish_many(self, topic: str, items: Iterable[tuple[str, Any]]) -> None:
        """Publish several (key, event) pairs; implementations may batch, and return once all are durable."""
        for key, event in items:
            self.publish(topic, key, event)

    @abc.abstractmethod
    def consumer(self, topics: str | Sequence[str], group: str) -> Consumer:
        """Join ``group`` as a new member reading ``topics``; starts after the group's committed offsets."""

    @abc.abstractmethod
    def close(self) -> None:
        """Flush and release resources."""

    def ping(self) -> None:
        """Raise unless the bus answers now (the /readyz probe); implementations override this."""
        raise NotImplementedError(f"{type(self).__name__} cannot be probed")

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
