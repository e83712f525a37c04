"""What several grouping tests share: switching the compiled core, and the pairs a partition puts together."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from processors.grouping import native


@contextmanager
def core_on(on: bool) -> Iterator[None]:
    """The package on the compiled core (``on``) or on its pure-Python twins for a while."""
    saved = native.enabled
    native.enabled = on
    try:
        yield
    finally:
        native.enabled = saved


def pairs_of(labels: list[str]) -> set[tuple[int, int]]:
    """The pairs of positions that share a label."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        groups[label].append(i)
    return {pair for members in groups.values() for pair in itertools.combinations(members, 2)}


def syndication_generator() -> ModuleType:
    """tests/data/syndication/generate.py as a module (loaded once: its dataclasses look their module up)."""
    name = "syndication_generate"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[2] / "data" / "syndication" / "generate.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
