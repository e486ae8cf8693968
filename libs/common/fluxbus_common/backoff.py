"""Backoff as data: iterators of delays with jitter. Pure: no I/O."""

from __future__ import annotations

import random
from collections.abc import Iterator

JITTER = 0.05
"""Flux requeues at interval ± 5 %."""


def jittered(seconds: float, jitter: float = JITTER, rng: random.Random | None = None) -> float:
    """Return `seconds` moved by a uniform random fraction within ±`jitter`."""
    r = rng or random
    return max(0.0, seconds * (1.0 + r.uniform(-jitter, jitter)))


def exponential(
    base: float = 1.0, factor: float = 2.0, cap: float = 300.0, jitter: float = 0.1
) -> Iterator[float]:
    """Yield ever longer delays: base, base*factor, ... capped at `cap`, with jitter.

    The defaults follow controller-runtime's per-item limiter loosely: fast first
    retries for passing faults, at most five minutes between attempts.
    """
    delay = base
    while True:
        yield jittered(min(delay, cap), jitter)
        delay = min(delay * factor, cap)
