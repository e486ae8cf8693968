"""A tiny test kind, `Widget`, and its reconciler, to prove the controller
runtime's guarantees without any real service behind them.

`spec` drives the reconciler: `interval` (seconds, a float string), `suspend`,
`mode` (ok | fail | stall | wait), `failTimes` (fail that many times, then
succeed), `delay` (seconds one reconcile takes). The reconciler records what
happened, per key, for the tests to assert on.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from fluxbus_common.conditions import Condition
from fluxbus_common.errors import Generic, Stalling, Waiting
from fluxbus_common.reconcile import DependencyWatch, Result, Step, StepReconciler

_CFG = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True)


class WidgetMeta(BaseModel):
    model_config = ConfigDict(**_CFG, extra="allow")
    name: str
    namespace: str = "default"
    generation: int = 0
    annotations: dict[str, str] = Field(default_factory=dict)


class WidgetSpec(BaseModel):
    model_config = ConfigDict(**_CFG, extra="forbid")
    interval: float = 60.0
    suspend: bool = False
    mode: str = "ok"
    fail_times: int = 0
    depends_on: str | None = None
    """Name of a Gadget (same namespace) whose status change re-runs this Widget."""
    delay: float = 0.0


class WidgetStatus(BaseModel):
    model_config = ConfigDict(**_CFG, extra="allow")
    observed_generation: int = 0
    conditions: list[Condition] = Field(default_factory=list)
    last_handled_reconcile_at: str | None = None
    reconciles: int = 0


class Widget(BaseModel):
    model_config = ConfigDict(**_CFG, extra="allow")
    api_version: str = "test.fluxbus.io/v1"
    kind: str = "Widget"
    metadata: WidgetMeta
    spec: WidgetSpec = Field(default_factory=WidgetSpec)
    status: WidgetStatus = Field(default_factory=WidgetStatus)

    @property
    def key(self) -> str:
        return f"widget.{self.metadata.namespace}.{self.metadata.name}"


def dependents(gadget_key: str, widgets: Any) -> list[str]:
    """Keys of the Widgets whose spec.dependsOn names the Gadget `gadget_key`."""
    _, namespace, name = gadget_key.split(".", 2)
    return [
        key
        for key, doc in widgets.items()
        if (doc.get("spec") or {}).get("dependsOn") == name
        and (doc.get("metadata") or {}).get("namespace", "default") == namespace
    ]


def widget_doc(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    """Return a stored Widget document with the given spec fields (camelCase)."""
    return {
        "apiVersion": "test.fluxbus.io/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


class WidgetReconciler(StepReconciler[Widget, None]):
    """Records every reconcile: when, by whom, and how many ran at once per key."""

    kind: ClassVar[str] = "Widget"
    watches = (
        DependencyWatch(kind="gadget", map=lambda key, value, objects: dependents(key, objects)),
    )

    def __init__(self, instance: str = "test") -> None:
        self.instance = instance
        self.runs: dict[str, list[float]] = defaultdict(list)
        self.failures: dict[str, int] = defaultdict(int)
        self.finalized: list[str] = []
        self.running: dict[str, int] = defaultdict(int)
        self.max_running_per_key = 0
        self.max_running_total = 0
        self._total = 0

    def parse(self, doc: dict[str, Any]) -> Widget:
        return Widget.model_validate(doc)

    def interval(self, obj: Widget) -> float:
        return obj.spec.interval

    def new_state(self, obj: Widget) -> None:
        return None

    def steps(self) -> tuple[Step[Widget, None], ...]:
        return (self.reconcile_widget,)

    async def reconcile_widget(self, obj: Widget, state: None) -> Result:
        key = obj.key
        self.running[key] += 1
        self._total += 1
        self.max_running_per_key = max(self.max_running_per_key, self.running[key])
        self.max_running_total = max(self.max_running_total, self._total)
        try:
            self.runs[key].append(time.monotonic())
            obj.status.reconciles += 1
            if obj.spec.delay:
                await asyncio.sleep(obj.spec.delay)
            mode = obj.spec.mode
            if mode == "fail" or self.failures[key] < obj.spec.fail_times:
                self.failures[key] += 1
                raise Generic(f"widget {obj.metadata.name} failed", "WidgetFailed")
            if mode == "stall":
                raise Stalling("widget cannot progress", "WidgetStalled")
            if mode == "wait":
                raise Waiting("waiting for a friend", "DependencyNotReady", requeue_after=0.1)
            self.failures[key] = 0
            return Result(ready_reason="Succeeded", ready_message=f"reconciled by {self.instance}")
        finally:
            self.running[key] -= 1
            self._total -= 1

    async def finalize(self, obj: Widget) -> None:
        self.finalized.append(obj.key)
