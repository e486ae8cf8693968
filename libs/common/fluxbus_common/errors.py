"""Typed reconcile errors whose type decides what the runtime does next.

Pure: no I/O.

- `Stalling`: needs a human; no retry until the spec (generation) changes.
- `Waiting`: a dependency is not ready; requeue after `requeue_after` seconds.
- `Generic`: anything else; retry with exponential backoff.

Each carries the condition `reason` it stands for (events use the same).
"""

from __future__ import annotations


class ReconcileError(Exception):
    """Base of all errors a reconcile step may raise on purpose."""

    def __init__(self, message: str, reason: str = "ReconciliationFailed") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class Stalling(ReconcileError):
    """The object cannot progress until its spec changes."""


class Waiting(ReconcileError):
    """A dependency is not ready; retry after `requeue_after` seconds."""

    def __init__(self, message: str, reason: str, requeue_after: float) -> None:
        super().__init__(message, reason)
        self.requeue_after = requeue_after


class Generic(ReconcileError):
    """A failure worth retrying with backoff (outage, conflict, bad commit)."""

    def __init__(
        self, message: str, reason: str = "ReconciliationFailed", retry_after: float | None = None
    ) -> None:
        super().__init__(message, reason)
        self.retry_after = retry_after
        """When set (e.g. Kustomization retryInterval) it replaces exponential backoff."""
