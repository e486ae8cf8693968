"""The reconciler shape every service follows (CONVENTIONS §3).

A reconciler is a `StepReconciler[ObjT, StateT]`: guard clauses, then an
ordered tuple of step *methods* `reconcile_<aspect>(obj, state)` (returned by
`steps()`), where `state` is one dataclass per kind holding what the steps
hand each other (built fresh by `new_state()` for every reconcile). Each step
returns a `Result` (or None) or raises a typed error (`fluxbus_common.errors`).
One `summarize()` alone derives Ready / Reconciling / Stalled and
`observedGeneration`.

The loop itself lives here, not in services. A kind customises it through
hooks:
- `timeout(obj)` bounds the whole reconcile (None: no bound); a timeout
  becomes `Generic(timeout_message(...), RECONCILIATION_FAILED)`;
- `retry_interval(obj)` is the delay after a `Generic` error that names none
  (None: exponential backoff), read by the runtime;
- `on_result(obj, state, error)` runs once after the steps, with the error
  that ended them (None on success), e.g. to record history.

The runtime (`fluxbus_common.runtime`) calls `reconcile()`, then
`summarize()`, writes the status and schedules the next run. A step that
runs long (a health wait) may publish the status it has set so far with
`publish_progress(obj)`, as Flux patches `Reconciling`/`Ready=Unknown` mid-way.

Pure: no I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from fluxbus_common.conditions import ConditionType, Reason, remove_condition, set_condition
from fluxbus_common.duration import format_duration
from fluxbus_common.errors import Generic as GenericError
from fluxbus_common.errors import ReconcileError, Stalling

ObjT = TypeVar("ObjT")
StateT = TypeVar("StateT")


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


Step = Callable[[ObjT, StateT], Awaitable[Result | None]]
"""One step: a bound method `reconcile_<aspect>(obj, state)`."""

ProgressPublisher = Callable[[Any], Awaitable[None]]
"""Writes an object's current status while its reconcile is still running."""

_progress: ContextVar[ProgressPublisher | None] = ContextVar("fluxbus_progress", default=None)


@contextlib.contextmanager
def progress_to(publisher: ProgressPublisher) -> Iterator[None]:
    """Within the block (one reconcile, in its own task), `publish_progress` calls
    `publisher`; the runtime sets it around `reconcile()`."""
    token = _progress.set(publisher)
    try:
        yield
    finally:
        _progress.reset(token)


async def publish_progress(obj: Any) -> None:
    """Publish `obj.status` as it stands now (e.g. `Ready=Unknown`, `Progressing`
    while health checks run); a no-op outside a runtime (unit tests)."""
    publisher = _progress.get()
    if publisher is not None:
        await publisher(obj)


@dataclass
class DependencyWatch:
    """Re-run reconciles when something else changes.

    `kind` is watched in the status bucket (`source="status"`), the objects
    bucket (`source="objects"`), with `source="secrets"` the Secrets and
    ConfigMaps bucket (keys `<namespace>.<name>`; `kind` is then unused), or
    the keys `<kind>.>` of a bucket of the service's own (`bucket`).
    `map` receives the changed key, its new value
    (None when deleted) and this runtime's objects {key: document}, and returns
    the keys to reconcile at once.
    """

    kind: str
    map: Callable[[str, dict[str, Any] | None, Mapping[str, dict[str, Any]]], Iterable[str]]
    source: str = "status"
    bucket: str | None = None
    """When set, the keys `<kind>.>` of this KV bucket are watched instead (a
    service's own state, e.g. the notifier's delivery health of Providers)."""


class Reconciler(Protocol[ObjT]):
    """What the runtime needs from a kind's reconciler."""

    kind: ClassVar[str]
    """The Kind, e.g. "GitRepository"; its lower-case form prefixes keys."""

    @property
    def watches(self) -> tuple[DependencyWatch, ...]:
        """What else, when it changes, calls for a reconcile."""

    def parse(self, doc: dict[str, Any]) -> ObjT:
        """Validate a stored document (object + status) into the kind's model."""

    def interval(self, obj: ObjT) -> float:
        """Seconds between successful reconciles."""

    def retry_interval(self, obj: ObjT) -> float | None:
        """Seconds before retrying after a Generic error naming none (None: backoff)."""

    async def reconcile(self, obj: ObjT) -> Result:
        """Bring the world in line with obj; raise a ReconcileError on failure."""

    def summarize(self, obj: ObjT, result: Result | None, error: ReconcileError | None) -> None:
        """Set Ready/Reconciling/Stalled and observedGeneration on obj.status."""

    async def finalize(self, obj: ObjT) -> None:
        """Clean up before the object is removed (prune, delete artifacts)."""


class StepReconciler(Generic[ObjT, StateT]):
    """Base class: run `steps()` in order over a fresh state, stop at the first error.

    Subclasses set `kind` (and `watches` when they depend on other objects)
    and implement `parse`, `interval`, `new_state`, `steps` and the steps;
    the hooks (`timeout`, `retry_interval`, `on_result`, `finalize`) are
    optional.
    """

    kind: ClassVar[str] = ""
    watches: tuple[DependencyWatch, ...] = ()

    def new_state(self, obj: ObjT) -> StateT:
        """Return the empty per-reconcile state the steps fill in."""
        raise NotImplementedError

    def steps(self) -> tuple[Step[ObjT, StateT], ...]:
        """Return the steps, in order, as bound methods."""
        raise NotImplementedError

    def timeout(self, obj: ObjT) -> float | None:
        """Seconds the whole reconcile may take (None: unbounded)."""
        return None

    def timeout_message(self, obj: ObjT, seconds: float) -> str:
        """The Ready message of a reconcile that ran out of time."""
        return f"reconciliation timed out after {format_duration(seconds)}"

    def retry_interval(self, obj: ObjT) -> float | None:
        """Seconds before retrying after a Generic error naming none (None: backoff)."""
        return None

    async def on_result(self, obj: ObjT, state: StateT, error: ReconcileError | None) -> None:
        """Called once after the steps (error: what ended them, None on success)."""
        return None

    async def reconcile(self, obj: ObjT) -> Result:
        """Run the steps within `timeout(obj)`; call `on_result` on the way out.

        Raises the ReconcileError that stopped the steps (a timeout becomes Generic).
        """
        state = self.new_state(obj)
        result = Result()
        timeout = self.timeout(obj)
        error: ReconcileError | None = None
        try:
            async with asyncio.timeout(timeout):
                for step in self.steps():
                    result = result.merge(await step(obj, state))
        except TimeoutError:
            assert timeout is not None  # asyncio.timeout(None) never expires
            error = GenericError(self.timeout_message(obj, timeout), Reason.RECONCILIATION_FAILED)
        except ReconcileError as e:
            error = e
        await self.on_result(obj, state, error)
        if error is not None:
            raise error
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
