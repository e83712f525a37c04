"""Who holds a claim: a notifier's owner id, and whether it names a process of this host that died."""

from __future__ import annotations

import socket
import subprocess
import sys

from notifiers import claims

_PRINT_OWNER = "from notifiers.claims import owner; print(owner(), flush=True)"


def test_an_owner_that_ended_on_this_host_is_dead_and_one_still_running_is_not() -> None:
    ended = subprocess.run([sys.executable, "-c", _PRINT_OWNER], capture_output=True, text=True, check=True)
    assert claims.dead_here(ended.stdout.strip())

    running = subprocess.Popen([sys.executable, "-c", _PRINT_OWNER + "; import time; time.sleep(60)"],
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert running.stdout is not None
        holder = running.stdout.readline().strip()
        assert not claims.dead_here(holder)
        running.kill()
        running.wait()
        assert claims.dead_here(holder)  # killed with -9
    finally:
        running.kill()
        running.wait()


def test_only_a_process_of_this_host_and_pid_namespace_is_judged() -> None:
    mine = claims.owner()
    assert not claims.dead_here(mine)  # this process
    host, namespace, _, random = mine.rsplit(":", 3)
    gone = 2**22 + 1  # above Linux's largest pid: no such process
    assert claims.dead_here(f"{host}:{namespace}:{gone}:{random}")
    assert not claims.dead_here(f"{host}-elsewhere:{namespace}:{gone}:{random}")  # another host: unknown
    assert not claims.dead_here(f"{host}:pidns1:{gone}:{random}")  # another container's namespace: unknown
    assert not claims.dead_here(f"{host}:pidns:{gone}:{random}")  # namespace unknown
    assert not claims.dead_here(f"{socket.gethostname()}:{gone}:{random}")  # the old form: not judged
    assert not claims.dead_here("0123456789abcdef")  # an id of another kind
    assert not claims.dead_here("")
