"""The reconciler shape: typed steps over a per-kind state, and the runtime's hooks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, ClassVar

import pytest

from fluxbus_common.bus import Bus
from fluxbus_common.errors import Generic, ReconcileError
from fluxbus_common.reconcile import Result, Step, StepReconciler
from fluxbus_common.settings import RuntimeSettings
from fluxbus_common.testing.plugin import running_runtime, wait_for
from fluxbus_common.testing.widgets import Widget, WidgetReconciler, widget_doc


@dataclass
class TraceState:
    seen: list[str] = field(default_factory=list)


class Traced(StepReconciler[Widget, TraceState]):
    """Three steps handing a typed state along; hooks record what they saw."""

    kind: ClassVar[str] = "Widget"

    def __init__(self, *, timeout: float | None = None, fail_at: str = "") -> None:
        self._timeout = timeout
        self.fail_at = fail_at
        self.outcomes: list[tuple[list[str], ReconcileError | None]] = []

    def parse(self, doc: dict[str, Any]) -> Widget:
        return Widget.model_validate(doc)

    def interval(self, obj: Widget) -> float:
        return 3600.0

    def new_state(self, obj: Widget) -> TraceState:
        return TraceState()

    def steps(self) -> tuple[Step[Widget, TraceState], ...]:
        return (self.reconcile_one, self.reconcile_two, self.reconcile_three)

    def timeout(self, obj: Widget) -> float | None:
        return self._timeout

    async def on_result(self, obj: Widget, state: TraceState, error: ReconcileError | None) -> None:
        self.outcomes.append((list(state.seen), error))

    async def _step(self, name: str, state: TraceState) -> None:
        if self.fail_at == name:
            raise Generic(f"{name} failed", "StepFailed")
        if self.fail_at == f"hang-{name}":
            await asyncio.Event().wait()  # hangs until the timeout cancels it
        state.seen.append(name)

    async def reconcile_one(self, obj: Widget, state: TraceState) -> None:
        await self._step("one", state)

    async def reconcile_two(self, obj: Widget, state: TraceState) -> Result:
        await self._step("two", state)
        return Result(ready_message="two says ok")

    async def reconcile_three(self, obj: Widget, state: TraceState) -> None:
        await self._step("three", state)


def widget() -> Widget:
    return Widget.model_validate(widget_doc("w"))


async def test_steps_run_in_order_over_one_state_and_on_result_sees_it():
    rec = Traced()
    result = await rec.reconcile(widget())
    assert result.ready_message == "two says ok"
    assert rec.outcomes == [(["one", "two", "three"], None)]


async def test_the_first_failing_step_ends_the_reconcile_and_on_result_gets_its_error():
    rec = Traced(fail_at="two")
    with pytest.raises(Generic, match="two failed"):
        await rec.reconcile(widget())
    [(seen, error)] = rec.outcomes
    assert seen == ["one"]
    assert isinstance(error, Generic) and error.reason == "StepFailed"


async def test_a_reconcile_past_its_timeout_fails_with_the_go_duration_in_the_message():
    rec = Traced(timeout=0.05, fail_at="hang-three")
    with pytest.raises(Generic) as info:
        await rec.reconcile(widget())
    assert info.value.reason == "ReconciliationFailed"
    assert info.value.message == "reconciliation timed out after 50ms"
    [(seen, error)] = rec.outcomes
    assert seen == ["one", "two"] and error is info.value


class RetryEvery(WidgetReconciler):
    """A widget kind that retries failures after a fixed interval, as Flux's retryInterval."""

    def retry_interval(self, obj: Widget) -> float | None:
        return 0.3


async def test_the_runtime_retries_a_generic_error_after_the_reconcilers_retry_interval(
    bus: Bus,
):
    settings = RuntimeSettings(
        workers=1, shards=1, lease_ttl=0.6, instance="a", http_addr="", backoff_base=0.01
    )
    rec = RetryEvery("a")
    async with running_runtime(bus, rec, settings, service="retry"):
        key = "widget.default.flaky"
        await bus.apply_object(key, widget_doc("flaky", interval=3600, failTimes=3))
        await wait_for(lambda: len(rec.runs[key]) >= 4, message="3 failures then success")
        gaps = [b - a for a, b in pairwise(rec.runs[key])]
        # not the 0.01 s exponential backoff: the fixed retry interval, every time
        assert all(g >= 0.3 * 0.9 for g in gaps), gaps
