"""Shared fixtures for the collector tests: small HTTP settings, a real Fetcher, a real Store in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collectors.fetch import Fetcher
from newsradar.settings import HttpSettings
from newsradar.store import Store

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
SEOUL = ZoneInfo("Asia/Seoul")


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def shared_dir(*parts: str) -> Path:
    """A folder of ../shared (real data kept out of the repo); skips the test when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(f"{path} not found: the shared corpus lives beside the repository (/work/shared)")
    return path


def small_settings(**overrides: object) -> HttpSettings:
    """Tight limits so failure paths finish quickly: 1 s reads, a 2 s total deadline, no host spacing."""
    values: dict[str, object] = {
        "connect_timeout": 1.0,
        "read_timeout": 1.0,
        "total_timeout": 2.0,
        "max_bytes": 1_000_000,
        "per_host_delay": 0.0,
        "max_redirects": 3,
        "max_retry_after": 300.0,
    }
    values.update(overrides)
    return HttpSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings() -> HttpSettings:
    return small_settings()


@pytest.fixture
def fetcher(settings: HttpSettings) -> Iterator[Fetcher]:
    client = Fetcher(settings)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    state = Store(tmp_path / "state.db")
    try:
        yield state
    finally:
        state.close()


@pytest.fixture
def now() -> datetime:
    return datetime(2025, 5, 20, 9, 0, tzinfo=SEOUL)
