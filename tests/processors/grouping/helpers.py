"""What several grouping tests share: switching the compiled core, and the pairs a partition puts together."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

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
