"""A Kustomization's `status.history`: one entry per digest of the rendered
output (revision, first and last applied, duration, result, pruned objects),
newest first, bounded; and choosing the entry a rollback returns to.

Each entry's rendered output is kept in the object store (`history_output`);
the entries that fall off the bound name the outputs to delete.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fluxbus_common.api import Snapshot

HISTORY_LIMIT = 10
"""Entries kept by default (Flux keeps five; rollback wants a little more reach)."""
REVISION = "revision"
PRUNED = "pruned"
"""Snapshot metadata keys: the source revision, and the objects its apply pruned
(one `Kind/namespace/name` per line)."""
SUCCEEDED = "ReconciliationSucceeded"


@dataclass(frozen=True)
class Outcome:
    """One reconcile to record."""

    digest: str
    revision: str
    status: str
    now: str
    duration: str
    pruned: tuple[str, ...] = ()


def record(
    history: Sequence[Snapshot], outcome: Outcome, limit: int = HISTORY_LIMIT
) -> tuple[list[Snapshot], list[str]]:
    """Return the history with `outcome` recorded first (merged into the entry of
    the same digest), and the digests of the entries dropped by `limit`."""
    entries = [h.model_copy(deep=True) for h in history]
    current = next((h for h in entries if h.digest == outcome.digest), None)
    if current is not None:
        entries.remove(current)
        current.last_reconciled = outcome.now
        current.last_reconciled_duration = outcome.duration
        current.last_reconciled_status = outcome.status
        current.total_reconciliations += 1
        metadata = dict(current.metadata or {})
    else:
        current = Snapshot(
            digest=outcome.digest,
            first_reconciled=outcome.now,
            last_reconciled=outcome.now,
            last_reconciled_duration=outcome.duration,
            last_reconciled_status=outcome.status,
            total_reconciliations=1,
        )
        metadata = {}
    metadata[REVISION] = outcome.revision
    if outcome.pruned:
        metadata[PRUNED] = "\n".join(outcome.pruned)
    current.metadata = metadata
    entries.insert(0, current)
    kept = entries[: max(1, limit)]
    return kept, [h.digest for h in entries[len(kept) :]]


def revision_of(entry: Snapshot) -> str:
    """Return the source revision an entry applied ("" when unknown)."""
    return (entry.metadata or {}).get(REVISION, "")


def pruned_of(entry: Snapshot) -> list[str]:
    """Return the objects an entry's apply pruned."""
    text = (entry.metadata or {}).get(PRUNED, "")
    return [line for line in text.splitlines() if line]


class RollbackTargetError(ValueError):
    """No history entry matches the rollback request."""


def rollback_target(
    history: Sequence[Snapshot], *, to: str | None = None, steps: int | None = None
) -> Snapshot:
    """Return the entry to roll back to: the newest applied one whose revision (or
    digest) is `to`, else the one `steps` successful entries back (default 1) from
    the current one (a failed newest entry counts as the current one).

    Raises RollbackTargetError naming what was asked and what there is.
    """
    applied = [h for h in history if h.last_reconciled_status == SUCCEEDED]
    if to is not None:
        for h in applied:
            if _names(h, to):
                return h
        known = ", ".join(revision_of(h) for h in applied) or "none"
        raise RollbackTargetError(f"no applied history entry for {to} (applied: {known})")
    n = 1 if steps is None else steps
    if n < 1:
        raise RollbackTargetError("--steps must be at least 1")
    # from a failed newest entry, one step back is the last good one
    index = n if history and history[0].last_reconciled_status == SUCCEEDED else n - 1
    if index >= len(applied):
        raise RollbackTargetError(
            f"cannot go back {n} step(s): the history holds {len(applied)} applied entries"
        )
    return applied[index]


def _names(entry: Snapshot, wanted: str) -> bool:
    """Whether `wanted` names the entry: its revision (`main@sha1:<hex>`, the
    `sha1:<hex>` part, or a prefix of the hex) or its digest."""
    revision = revision_of(entry)
    sha = revision.rsplit(":", 1)[-1]
    return (
        wanted in (revision, entry.digest)
        or revision.endswith("@" + wanted)
        or (len(wanted) >= 7 and sha.startswith(wanted))
    )


def find(history: Sequence[Snapshot], digest: str) -> Snapshot | None:
    """Return the entry of a digest, or None."""
    return next((h for h in history if h.digest == digest), None)
