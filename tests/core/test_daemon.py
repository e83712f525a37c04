"""The daemon's own start and stop (its stages, sweeps and children are tested where they live)."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsradar.daemon import Daemon
from newsradar.settings import parse


def test_a_first_sweep_that_fails_stops_the_daemon_with_its_own_error(tmp_path: Path) -> None:
    """Before the stage threads start (the first sweep comes first), a failure must come out as itself: the
    shutdown joins only the threads that were started."""
    settings = parse({"state_dir": str(tmp_path), "web": {"enabled": False},
                      "sources": [{"name": "feed", "url": "http://127.0.0.1:9/feed.xml", "interval": 3600}]})  # fmt: skip
    daemon = Daemon(settings)

    def fails() -> list:
        raise OSError("the first sweep failed")

    daemon.poll_all = fails  # type: ignore[method-assign]
    with pytest.raises(OSError, match="the first sweep failed"):
        daemon.run_forever(install_signals=False)
