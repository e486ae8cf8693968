"""Waiting for applied objects to become healthy, driven by watches, never by
polling: cluster objects through the cluster's shared watches
(`ClusterPort.watch_until`), toolkit objects in the fluxbus store through a
KV watch on their status (`StatusReader.kv_watch`).

Each new state is judged by kstatus or the Kustomization's
`healthCheckExprs` (`logic.health`); a Failed object ends the wait early.
A toolkit object in the store (a HelmRelease, HelmChart, HelmRepository,
GitRepository, Kustomization…) is judged as Flux judges its own kinds
(`store_health`): Current once Ready=True for its current generation
(`status.observedGeneration == metadata.generation`), Failed only when Ready=False
and Stalled=True (a failing install with retries left is still in progress).
`race()` lets the reconciler abandon a wait when a newer revision or
generation arrives (`Superseded`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from fluxbus_common import subjects
from fluxbus_common.ports import ObjectStore, StatusReader
from fluxbus_common.tasks import cancel_and_wait
from fluxbus_kustomize.logic.health import HealthCheckExpr, HealthResult, Status, check_health
from fluxbus_kustomize.ports import Change, ClusterPort, Judge, Ref
from fluxbus_kustomize.store_apply import in_store

T = TypeVar("T")


class Superseded(Exception):
    """A newer revision or generation arrived while waiting."""


class StoreStatus(StatusReader, ObjectStore, Protocol):
    """The store as a health wait reads it: toolkit objects and their status."""


async def race(aw: Awaitable[T], event: asyncio.Event) -> T:
    """Await `aw` unless `event` fires first (then raise Superseded)."""
    task = asyncio.ensure_future(aw)
    stop = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_and_wait(*(t for t in (task, stop) if not t.done()))
    if task.done() and not task.cancelled():
        return task.result()
    raise Superseded


def _condition(status: Mapping[str, Any], ctype: str) -> Mapping[str, Any]:
    for cond in status.get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == ctype:
            return cond
    return {}


def store_health(obj: Mapping[str, Any], exprs: Sequence[HealthCheckExpr] = ()) -> HealthResult:
    """The health of a toolkit object in the store: its `healthCheckExprs` entry when
    one matches, else Ready=True at the current generation is Current, Ready=False
    with Stalled=True is Failed, anything else is still in progress."""
    if any(expr.matches(obj) for expr in exprs):
        return check_health(obj, exprs)
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    ready = _condition(status, "Ready")
    message = str(ready.get("message") or "")
    if generation is not None and observed != generation:
        return HealthResult(
            Status.IN_PROGRESS, f"generation {generation} not reconciled yet (observed {observed})"
        )
    if ready.get("status") == "True":
        return HealthResult(Status.CURRENT, message or "Ready")
    stalled = _condition(status, "Stalled")
    if ready.get("status") == "False" and stalled.get("status") == "True":
        return HealthResult(Status.FAILED, str(stalled.get("message") or message or "Stalled"))
    return HealthResult(Status.IN_PROGRESS, message or "Ready condition not set")


async def wait_healthy(
    cluster: ClusterPort,
    store: StoreStatus,
    targets: Sequence[Change],
    exprs: Sequence[HealthCheckExpr],
    timeout: float,
) -> tuple[bool, list[str]]:
    """Wait until every target is Current (a Failed one ends the wait early).

    Returns (healthy, descriptions of the unhealthy objects in target order).
    """
    results: dict[Ref, HealthResult] = {}
    failed = asyncio.Event()

    def judge(ref: Ref, obj: Mapping[str, Any] | None) -> bool:
        if obj is None:
            results[ref] = HealthResult(Status.IN_PROGRESS, "object not found")
            return False
        results[ref] = store_health(obj, exprs) if in_store(ref) else check_health(obj, exprs)
        if results[ref].status is Status.FAILED:
            failed.set()
        return results[ref].status is Status.CURRENT

    stored: list[Change] = []
    in_cluster: list[Change] = []
    for c in targets:
        (stored if in_store(c.ref) else in_cluster).append(c)
    initial = {c.ref: c.object for c in in_cluster if c.object is not None}
    waits: list[Awaitable[tuple[bool, Any]]] = []
    if in_cluster:
        refs = [c.ref for c in in_cluster]
        waits.append(cluster.watch_until(refs, judge, timeout, initial))
    if stored:
        waits.append(wait_store(store, [c.ref for c in stored], judge, timeout))

    async def all_waits() -> list[tuple[bool, Any]]:
        return await asyncio.gather(*waits)

    try:
        outcome = await race(all_waits(), failed)
        ok = all(o[0] for o in outcome)
    except Superseded:
        ok = False
    order = {c.ref: i for i, c in enumerate(targets)}
    unhealthy = [
        f"{ref.describe()} status: '{res.status}': {res.message}"
        for ref, res in sorted(results.items(), key=lambda kv: order[kv[0]])
        if res.status is not Status.CURRENT
    ]
    if not ok and not unhealthy:
        unhealthy = ["timeout waiting for the objects' status"]
    return ok and not unhealthy, unhealthy


async def wait_store(
    store: StoreStatus, refs: Sequence[Ref], judge: Judge, timeout: float
) -> tuple[bool, None]:
    """Wait until `judge` holds for every toolkit object in the store (KV-watch
    driven); return (all judged done within `timeout`, None)."""

    async def one(ref: Ref) -> None:
        key = subjects.object_key(ref.resource.kind, ref.namespace, ref.name)
        async for change in store.kv_watch(subjects.STATUS_BUCKET, key):
            doc = await store.get_object(key)
            if doc is None:
                judge(ref, None)
                continue
            full = {**doc.value, "status": change.value or {}}
            if judge(ref, full):
                return

    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(one(r) for r in refs))
    except TimeoutError:
        return False, None
    return True, None
