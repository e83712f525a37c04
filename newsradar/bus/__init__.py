"""Buses: the embedded SQLite log (default) and Kafka. ``open_bus`` picks one from config."""

from __future__ import annotations

from pathlib import Path

from newsradar.bus.base import ARTICLES, DEAD_LETTER, RAW, STORIES, TOPICS, Bus, Consumer, Delivery
from newsradar.settings import Settings


def open_bus(settings: Settings) -> Bus:
    """The bus named by ``settings.bus.kind``, with its topics created."""
    if settings.bus.kind == "kafka":
        from newsradar.bus.kafka import KafkaBus  # imported lazily: the embedded default needs no broker

        bus: Bus = KafkaBus.from_settings(settings.bus)
    else:
        from newsradar.bus.embedded import EmbeddedBus

        bus = EmbeddedBus(Path(settings.state_dir) / settings.bus.path, session_timeout=settings.bus.session_timeout)
    bus.ensure_topics({t: settings.bus.kafka.partitions.get(t, 1) for t in TOPICS})
    return bus


__all__ = ["ARTICLES", "DEAD_LETTER", "RAW", "STORIES", "TOPICS", "Bus", "Consumer", "Delivery", "open_bus"]
