"""A ledger of reconciles across replicas, for tests that prove no object is
ever reconciled by two replicas at once.

A test's reconciler wraps each reconcile in `ledger.record(key, instance)`;
`overlaps()` returns every pair of reconciles of one key by two replicas whose
time spans intersect (an empty list is what the runtime guarantees).
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Run:
    """One reconcile: which key, by which replica, from when to when (monotonic)."""

    key: str
    instance: str
    start: float
    end: float = float("inf")
    """Still running while infinite."""


@dataclass
class Ledger:
    """Every reconcile of every replica, and the revisions each one applied."""

    runs: list[Run] = field(default_factory=list)
    applied: dict[str, set[str]] = field(default_factory=dict)
    """Key → revisions some replica finished applying (for tests that record them)."""

    @contextlib.contextmanager
    def record(self, key: str, instance: str) -> Iterator[Run]:
        """Record one reconcile of `key` by `instance` for the duration of the block."""
        run = Run(key, instance, time.monotonic())
        self.runs.append(run)
        try:
            yield run
        finally:
            run.end = time.monotonic()

    def running(self) -> int:
        """How many reconciles are in progress."""
        return sum(1 for r in self.runs if r.end == float("inf"))

    def overlaps(self) -> list[tuple[Run, Run]]:
        """Pairs of reconciles of one key by two replicas that ran at the same time."""
        out: list[tuple[Run, Run]] = []
        by_key: dict[str, list[Run]] = {}
        for r in self.runs:
            by_key.setdefault(r.key, []).append(r)
        for runs in by_key.values():
            runs.sort(key=lambda r: r.start)
            for a, b in itertools.combinations(runs, 2):
                if a.instance != b.instance and b.start < a.end:
                    out.append((a, b))
        return out
