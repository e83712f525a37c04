"""Whether a process of this host still runs: what lets a lease or a consumer of a killed process pass on at once.

A process killed with -9 stays in the process table as a zombie until its parent reaps it, and one whose parent
died first is reaped by the host's init, which in a container may never do it: signal 0 still answers for a
zombie, so a zombie counts as ended here (it can never write, post or commit anything again).
"""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """Whether process ``pid`` of this host (and PID namespace) exists and has not ended."""
    try:
        os.kill(pid, 0)  # signal 0: asks whether the process exists, sends nothing
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists (another user's)
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            state = stat.read().rsplit(")", 1)[-1].split()[:1]
    except OSError:
        return True  # no /proc (not Linux), or it ended just now: the next look decides
    return state != ["Z"]
