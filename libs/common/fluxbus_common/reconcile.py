"""The reconciler shape every service follows (CONVENTIONS §3).

A reconciler runs an ordered tuple of steps `reconcile_<aspect>(obj, scratch)`;
each returns a `Result` or raises a typed error (`fluxbus_common.errors`);
one `summarize()` alone derives Ready / Reconciling / Stalled and
`observedGeneration`. The runtime (`fluxbus_common.runtime`) calls
`reconcile()`, then `summarize()`, writes the status and schedules the next run.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from fluxbus_common.conditions import ConditionType, Reason, remove_condition, set_condition
from fluxbus_common.errors import ReconcileError, Stalling

ObjT = TypeVar("ObjT")


@dataclass
class Result:
    """What a successful reconcile (or step) says.

    `requeue_after` overrides the interval for the next run; `ready_reason`
    and `ready_message` become the Ready condition.
    """

    requeue_after: float | None = None
    ready_reason: str = Reason.SUCCEEDED
    ready_message: str = ""

    def merge(self, other: Result | None) -> Result:
        """Return this result updated by a later step's (later steps win when they say more)."""
        if other is None:
            return self
        return Result(
            requeue_after=other.requeue_after
            if other.requeue_after is not None
            else self.requeue_after,
            ready_reason=other.ready_reason
            if other.ready_reason != Reason.SUCCEEDED
            else self.ready_reason,
            ready_message=other.ready_message or self.ready_message,
        )


@dataclass
class DependencyWatch:
    """Re-run reconciles when something else changes.

    `kind` is watched in the status bucket (`source="status"`) or the objects
    bucket (`source="objects"`). `map` receives the changed key, its new value
    (None when deleted) and this runtime's objects {key: document}, and returns
    the keys to reconcile at once.
    """

    kind: str
    map: Callable[[str, dict[str, Any] | None, Mapping[str, dict[str, Any]]], Iterable[str]]
    source: str = "status"


class Reconciler(Protocol[ObjT]):
    """What the runtime needs from a kind's reconciler."""

    kind: ClassVar[str]
    """The Kind, e.g. "GitRepository"; its lower-case form prefixes keys."""
    watches: ClassVar[tuple[DependencyWatch, ...]]

    def parse(self, doc: dict[str, Any]) -> ObjT:
        """Validate a stored document (object + status) into the kind's model."""

    def interval(self, obj: ObjT) -> float:
        """Seconds between successful reconciles."""

    async def reconcile(self, obj: ObjT) -> Result:
        """Bring the world in line with obj; raise a ReconcileError on failure."""

    def summarize(self, obj: ObjT, result: Result | None, error: ReconcileError | None) -> None:
        """Set Ready/Reconciling/Stalled and observedGeneration on obj.status."""

    async def finalize(self, obj: ObjT) -> None:
        """Clean up before the object is removed (prune, delete artifacts)."""


class StepReconciler(Generic[ObjT]):
    """Base class: run `steps` in order, stop at the first error.

    Subclasses set `kind`, `steps` (method names) and `watches`, and implement
    `parse`, `interval` and the steps.
    """

    kind: ClassVar[str] = ""
    steps: ClassVar[tuple[str, ...]] = ()
    watches: ClassVar[tuple[DependencyWatch, ...]] = ()

    async def reconcile(self, obj: ObjT) -> Result:
        scratch: dict[str, Any] = {}
        result = Result()
        for name in self.steps:
            step: Callable[[ObjT, dict[str, Any]], Awaitable[Result | None]] = getattr(self, name)
            result = result.merge(await step(obj, scratch))
        return result

    def summarize(self, obj: Any, result: Result | None, error: ReconcileError | None) -> None:
        summarize(obj, result, error)

    async def finalize(self, obj: ObjT) -> None:
        return None


def summarize(obj: Any, result: Result | None, error: ReconcileError | None) -> None:
    """Flux's summarize: derive Ready / Reconciling / Stalled from the outcome.

    On success Ready=True and observedGeneration = generation. A Stalling error
    also records the generation (acted on it: it cannot progress); other
    errors leave observedGeneration as it was, Reconciling=True meaning a
    retry will come.
    """
    conds = obj.status.conditions
    generation = obj.metadata.generation or 0
    if error is None:
        r = result or Result()
        set_condition(conds, ConditionType.READY, True, r.ready_reason, r.ready_message, generation)
        remove_condition(conds, ConditionType.RECONCILING)
        remove_condition(conds, ConditionType.STALLED)
        obj.status.observed_generation = generation
        return
    set_condition(conds, ConditionType.READY, False, error.reason, error.message, generation)
    if isinstance(error, Stalling):
        set_condition(conds, ConditionType.STALLED, True, error.reason, error.message, generation)
        remove_condition(conds, ConditionType.RECONCILING)
        obj.status.observed_generation = generation
    else:
        set_condition(
            conds,
            ConditionType.RECONCILING,
            True,
            Reason.PROGRESSING_WITH_RETRY,
            error.message,
            generation,
        )
        remove_condition(conds, ConditionType.STALLED)
