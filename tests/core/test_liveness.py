"""A killed process counts as ended at once, even while it is a zombie nobody has reaped yet."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from newsradar.liveness import alive


def test_a_running_process_is_alive_and_a_killed_one_is_not_even_before_it_is_reaped() -> None:
    assert alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert alive(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive(child.pid) and time.monotonic() < deadline:  # not waited for: it stays a zombie
            time.sleep(0.01)
        assert not alive(child.pid)
        os.kill(child.pid, 0)  # still in the process table (signal 0 answers): what the check sees through
    finally:
        child.kill()
        child.wait()
    assert not alive(child.pid)
    assert not alive(2**22 + 1)  # above any Linux pid
