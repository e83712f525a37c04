"""Claims in the state store: who may send a held alert's release or a day's digest, across hosts.

Notifiers on several hosts may share one state store (PostgreSQL). Before a quiet-hours release or a digest
goes out, the sender claims it in the store in one transaction (a conditional UPDATE, or INSERT ... ON
CONFLICT DO NOTHING): only one claimer wins, the others send nothing. A claim names its owner (host, PID
namespace, process and a random part, so a restarted process is a new owner) and its time; one older than the
lease is taken to belong to a notifier that died mid-send, and is taken over, finished after a look in Slack's
history. An alert's lease held by a process of this host that no longer exists is taken over at once
(``dead_here``).
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

from newsradar.liveness import alive

RELEASING = "release"  # store ref of a held alert claimed for a one-by-one release
# Far above one post's time (slack.timeout, default 10 s, plus min_interval): a release claimed longer ago
# than this is a dead notifier's, and is finished by another (or by the restarted one).
RELEASE_LEASE = timedelta(minutes=2)
# A digest is several posts (parts, chart) or one SMTP transaction; its holder renews the claim per part.
DIGEST_LEASE = timedelta(minutes=5)


def owner() -> str:
    """A claim owner id for this notifier instance: "<host>:pidns<N>:<pid>:<random>" (no secrets, fine in logs).

    The PID namespace (Linux; empty elsewhere) tells two containers apart that share a host name (host
    networking): a process id means something only within its namespace.
    """
    return f"{socket.gethostname()}:pidns{_pid_namespace()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid").partition("[")[2].rstrip("]")
    except OSError:
        return ""


def dead_here(holder: str) -> bool:
    """Whether ``holder`` (an ``owner()`` id) names a process of this host and PID namespace that no longer exists.

    Then what it held can be taken over at once (a notifier killed with -9 and started again need not wait for
    its own lease to run out). Anything else, including an id of another form, another host or namespace, a
    live process, or an unknown namespace, is not known to be dead.
    """
    parts = holder.rsplit(":", 3)
    if len(parts) != 4 or not parts[1].startswith("pidns") or not parts[2].isdigit():
        return False
    host, namespace, pid = parts[0], parts[1][len("pidns"):], int(parts[2])
    if not namespace or host != socket.gethostname() or namespace != _pid_namespace() or pid == os.getpid():
        return False
    return not alive(pid)
