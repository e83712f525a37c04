"""Run ``newsradar`` as real processes for the restart and fault tests (logs to files, never pipes)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.servers.slack import TOKEN

ROOT = Path(__file__).resolve().parents[2]


def newsradar(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run ``newsradar ARGS`` to completion (5-minute cap), output captured; ``env`` adds to os.environ."""
    return subprocess.run(
        [sys.executable, "-m", "newsradar.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
        env={**os.environ, **(env or {})},
    )


def start(config: Path, *args: str, name: str = "run", env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``newsradar --config CONFIG run ARGS``; its log goes to a file beside the config; ``env`` adds."""
    env = {**os.environ, "SLACK_BOT_TOKEN": TOKEN, **(env or {})}
    env.pop("SLACK_WEBHOOK_URL", None)
    path = config.parent / f"{name}-{time.monotonic_ns()}.log"
    with open(path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "newsradar.cli", "--config", str(config), "run", *args],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    process.log_path = path  # type: ignore[attr-defined]
    return process


def output(process: subprocess.Popen, tail: int = 4000) -> str:
    return process.log_path.read_text(encoding="utf-8", errors="replace")[-tail:]  # type: ignore[attr-defined]


def wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, state: Callable[[], str] | None = None
) -> None:
    """Poll ``predicate`` until true; on time-out fail naming what we waited for and the state seen."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            seen = f" (state: {state()})" if state else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{seen}")
        time.sleep(0.05)


def stop(process: subprocess.Popen, timeout: float = 60) -> int:
    """SIGTERM, wait; kill if it hangs (and fail loudly through the return code)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def children(pid: int) -> set[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found
