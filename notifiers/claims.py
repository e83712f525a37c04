"""Claims in the state store: who may send a held alert's release or a day's digest, across hosts.

Notifiers on several hosts may share one state store (PostgreSQL). Before a quiet-hours release or a digest
goes out, the sender claims it in the store in one transaction (a conditional UPDATE, or INSERT ... ON
CONFLICT DO NOTHING): only one claimer wins, the others send nothing. A claim names its owner (host, process
and a random part, so a restarted process is a new owner) and its time; one older than the lease is taken to
belong to a notifier that died mid-send, and is taken over, finished after a look in Slack's history.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

RELEASING = "release"  # store ref of a held alert claimed for a one-by-one release
# Far above one post's time (slack.timeout, default 10 s, plus min_interval): a release claimed longer ago
# than this is a dead notifier's, and is finished by another (or by the restarted one).
RELEASE_LEASE = timedelta(minutes=2)
# A digest is several posts (parts, chart) or one SMTP transaction; its holder renews the claim per part.
DIGEST_LEASE = timedelta(minutes=5)


def owner() -> str:
    """A claim owner id for this notifier instance: "<host>:<pid>:<random>" (no secrets, fine in logs)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
