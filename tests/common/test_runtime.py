"""The controller runtime's guarantees, each proven with the tiny Widget kind
against a real nats-server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from itertools import pairwise

import pytest

from fluxbus_common import keys
from fluxbus_common.bus import Bus
from fluxbus_common.runtime import Runtime
from fluxbus_common.settings import BusSettings, RuntimeSettings
from fluxbus_common.testing.plugin import running_runtime, wait_for
from fluxbus_common.testing.widgets import WidgetReconciler, widget_doc

SETTINGS = RuntimeSettings(
    workers=4,
    shards=1,
    lease_ttl=0.6,
    instance="a",
    http_addr="",
    backoff_base=0.05,
    backoff_cap=0.8,
)


@contextlib.asynccontextmanager
async def running(
    bus: Bus, settings: RuntimeSettings = SETTINGS, *, standby: bool = False
) -> AsyncIterator[tuple[Runtime, WidgetReconciler]]:
    reconciler = WidgetReconciler(settings.instance)
    async with running_runtime(
        bus, reconciler, settings, service="widgets", standby=standby
    ) as runtime:
        yield runtime, reconciler


async def status_of(bus: Bus, key: str) -> dict:
    entry = await bus.get_status(key)
    return {} if entry is None else entry.value


def ready(status: dict) -> str | None:
    for c in status.get("conditions", []):
        if c["type"] == "Ready":
            return c["status"]
    return None


async def test_success_requeues_at_the_interval(bus: Bus):
    async with running(bus) as (_, rec):
        await bus.apply_object("widget.default.tick", widget_doc("tick", interval=0.2))
        await wait_for(lambda: len(rec.runs["widget.default.tick"]) >= 4, message="4 runs")
        runs = rec.runs["widget.default.tick"]
        gaps = [b - a for a, b in pairwise(runs)]
        assert all(g >= 0.2 * 0.95 - 0.01 for g in gaps), gaps  # never earlier than interval-5 %
        status = await status_of(bus, "widget.default.tick")
        assert ready(status) == "True"
        assert status["observedGeneration"] == 1


async def test_failures_back_off_exponentially_and_reset_after_success(bus: Bus):
    async with running(bus) as (_, rec):
        key = "widget.default.flaky"
        await bus.apply_object(key, widget_doc("flaky", interval=3600, failTimes=4))
        await wait_for(lambda: len(rec.runs[key]) >= 5, message="4 failures then success")
        runs = rec.runs[key]
        gaps = [b - a for a, b in pairwise(runs)]
        # base 0.05 doubling, ±10 % jitter: every gap clearly longer than the one before
        assert all(b > a * 1.4 for a, b in pairwise(gaps)), gaps
        await wait_for(lambda: _observed_ready(bus, key), message="ready after the failures")
        # a new failure run after the success starts again from the base delay
        await bus.apply_object(key, widget_doc("flaky", interval=3600, failTimes=2))
        await wait_for(lambda: len(rec.runs[key]) >= 8, message="second run of failures")
        runs = rec.runs[key]
        assert runs[6] - runs[5] < gaps[-1] / 2
        assert runs[6] - runs[5] < 0.2


async def test_failed_reconcile_marks_not_ready_and_emits_a_warning_event(bus: Bus):
    async with running(bus) as (_, rec):
        key = "widget.default.broken"
        await bus.apply_object(key, widget_doc("broken", mode="fail"))
        await wait_for(lambda: len(rec.runs[key]) >= 2, message="retry")
        status = await status_of(bus, key)
        assert ready(status) == "False"
        cond = next(c for c in status["conditions"] if c["type"] == "Ready")
        assert cond["reason"] == "WidgetFailed"
        assert "widget broken failed" in cond["message"]
        events = await bus.recent_events()
        assert any(e.reason == "WidgetFailed" and e.severity == "error" for e in events)


async def test_suspended_objects_are_not_reconciled_until_resumed(bus: Bus):
    async with running(bus) as (_, rec):
        key = "widget.default.sleepy"
        await bus.apply_object(key, widget_doc("sleepy", interval=0.1))
        await wait_for(lambda: len(rec.runs[key]) >= 2, message="first runs")
        await bus.apply_object(key, widget_doc("sleepy", interval=0.1, suspend=True))
        await asyncio.sleep(0)  # let the watch deliver
        await wait_for(lambda: not rec.running[key], message="in-flight run done")
        count = len(rec.runs[key])
        # a witness object ticking at the same interval proves time passed
        await bus.apply_object("widget.default.witness", widget_doc("witness", interval=0.1))
        await wait_for(lambda: len(rec.runs["widget.default.witness"]) >= 6, message="witness")
        assert len(rec.runs[key]) <= count + 1  # at most the run already queued
        frozen = len(rec.runs[key])
        await wait_for(lambda: len(rec.runs["widget.default.witness"]) >= 9, message="witness")
        assert len(rec.runs[key]) == frozen
        await bus.apply_object(key, widget_doc("sleepy", interval=0.1))
        await wait_for(lambda: len(rec.runs[key]) > frozen, message="resumed")


async def test_a_new_requested_at_reconciles_at_once_and_is_recorded(bus: Bus):
    async with running(bus) as (_, rec):
        key = "widget.default.manual"
        await bus.apply_object(key, widget_doc("manual", interval=3600))
        await wait_for(lambda: len(rec.runs[key]) == 1, message="first run")
        doc = widget_doc("manual", interval=3600)
        doc["metadata"]["annotations"] = {keys.RECONCILE_REQUESTED_AT: "2026-11-26T10:00:00Z"}
        await bus.apply_object(key, doc)
        await wait_for(lambda: len(rec.runs[key]) == 2, message="requested run")
        status = await wait_for(
            lambda: _status_with(bus, key, "lastHandledReconcileAt"), message="recorded"
        )
        assert status["lastHandledReconcileAt"] == "2026-11-26T10:00:00Z"


async def _status_with(bus: Bus, key: str, field: str) -> dict | None:
    status = await status_of(bus, key)
    return status if field in status else None


async def test_a_spec_change_reconciles_at_once(bus: Bus):
    async with running(bus) as (_, rec):
        key = "widget.default.gen"
        await bus.apply_object(key, widget_doc("gen", interval=3600))
        await wait_for(lambda: len(rec.runs[key]) == 1, message="first run")
        await bus.apply_object(key, widget_doc("gen", interval=3500))
        await wait_for(lambda: len(rec.runs[key]) == 2, message="run for generation 2")
        status = await wait_for(lambda: _observed(bus, key, 2), message="observedGeneration 2")
        assert status["observedGeneration"] == 2


async def _observed(bus: Bus, key: str, generation: int) -> dict | None:
    status = await status_of(bus, key)
    return status if status.get("observedGeneration") == generation else None


async def test_a_change_in_a_watched_dependency_reconciles_dependents_at_once(bus: Bus):
    async with running(bus) as (_, rec):
        key = "widget.default.follower"
        await bus.apply_object(key, widget_doc("follower", interval=3600, dependsOn="leader"))
        await bus.apply_object("widget.default.loner", widget_doc("loner", interval=3600))
        await wait_for(lambda: len(rec.runs[key]) == 1, message="first run")
        rev = await bus.put_status("gadget.default.leader", {"revision": "a"}, 0)
        await wait_for(lambda: len(rec.runs[key]) == 2, message="run after the dependency")
        await bus.put_status("gadget.default.other", {"revision": "a"}, 0)
        await bus.put_status("gadget.default.leader", {"revision": "b"}, rev)
        await wait_for(lambda: len(rec.runs[key]) == 3, message="second dependency change")
        assert len(rec.runs["widget.default.loner"]) == 1


async def test_stalled_objects_wait_for_a_new_generation(bus: Bus):
    async with running(bus) as (_, rec):
        key = "widget.default.stuck"
        await bus.apply_object(key, widget_doc("stuck", mode="stall", interval=0.05))
        await wait_for(lambda: _stalled(bus, key), message="stalled")
        await bus.apply_object("widget.default.witness", widget_doc("witness", interval=0.05))
        await wait_for(lambda: len(rec.runs["widget.default.witness"]) >= 8, message="witness")
        assert len(rec.runs[key]) == 1
        await bus.apply_object(key, widget_doc("stuck", interval=0.05))
        await wait_for(lambda: _observed_ready(bus, key), message="ready after fix")


async def _stalled(bus: Bus, key: str) -> bool:
    status = await status_of(bus, key)
    return any(
        c["type"] == "Stalled" and c["status"] == "True" for c in status.get("conditions", [])
    )


async def _observed_ready(bus: Bus, key: str) -> bool:
    return ready(await status_of(bus, key)) == "True"


async def test_waiting_requeues_after_the_requested_delay(bus: Bus):
    async with running(bus) as (_, rec):
        key = "widget.default.patient"
        await bus.apply_object(key, widget_doc("patient", mode="wait", interval=3600))
        await wait_for(lambda: len(rec.runs[key]) >= 3, message="requeued waits")
        runs = rec.runs[key]
        assert all(b - a >= 0.09 for a, b in pairwise(runs))


async def test_one_key_is_never_reconciled_twice_at_once_under_load(bus: Bus):
    async with running(bus) as (_, rec):
        names = [f"busy{i}" for i in range(6)]
        for n in names:
            await bus.apply_object(f"widget.default.{n}", widget_doc(n, interval=0.01, delay=0.02))
        # hammer the same keys with manual reconcile requests while they run
        for round_ in range(15):
            for n in names:
                doc = widget_doc(n, interval=0.01, delay=0.02)
                doc["metadata"]["annotations"] = {keys.RECONCILE_REQUESTED_AT: str(round_)}
                await bus.apply_object(f"widget.default.{n}", doc)
        await wait_for(
            lambda: all(len(rec.runs[f"widget.default.{n}"]) >= 10 for n in names), message="load"
        )
        assert rec.max_running_per_key == 1
        assert rec.max_running_total > 1  # workers did run in parallel across keys


async def test_deleting_runs_the_finalizer_then_removes_the_object(bus: Bus):
    async with running(bus) as (_, rec):
        key = "widget.default.doomed"
        await bus.apply_object(key, widget_doc("doomed", interval=3600))
        await wait_for(lambda: _has_finalizer(bus, key), message="finalizer added")
        assert await bus.request_delete(key)
        await wait_for(lambda: key in rec.finalized, message="finalized")
        await wait_for(lambda: _gone(bus, key), message="removed")
        assert await bus.get_status(key) is None


async def _has_finalizer(bus: Bus, key: str) -> bool:
    entry = await bus.get_object(key)
    return entry is not None and keys.FINALIZER in entry.value["metadata"].get("finalizers", [])


async def _gone(bus: Bus, key: str) -> bool:
    return await bus.get_object(key) is None


async def test_an_invalid_stored_object_is_stalled_with_the_field_named(bus: Bus):
    async with running(bus):
        key = "widget.default.bad"
        await bus.apply_object(key, widget_doc("bad", colour="red"))
        await wait_for(lambda: _stalled(bus, key), message="stalled")
        cond = next(c for c in (await status_of(bus, key))["conditions"] if c["type"] == "Ready")
        assert "colour" in cond["message"]


def _owners(recs: list[WidgetReconciler]) -> Callable[[str], set[str]]:
    def owners(key: str) -> set[str]:
        return {r.instance for r in recs if r.runs.get(key)}

    return owners


async def test_two_replicas_share_the_work_with_exactly_one_owner_per_key(
    bus: Bus, bus_settings: BusSettings
):
    other_bus = await Bus.connect(bus_settings, "replica-b")
    sharded = replace(SETTINGS, shards=4)
    try:
        async with (
            running(bus, replace(sharded, instance="a")) as (_, rec_a),
            running(other_bus, replace(sharded, instance="b")) as (rt_b, rec_b),
        ):
            await wait_for(lambda: len(rt_b._owned) == 2, message="fair share of shards")
            keys_ = [f"widget.default.s{i}" for i in range(24)]
            for i, key in enumerate(keys_):
                await bus.apply_object(key, widget_doc(f"s{i}", interval=0.1))
            owners = _owners([rec_a, rec_b])
            await wait_for(lambda: all(len(rec_a.runs[k]) + len(rec_b.runs[k]) >= 3 for k in keys_))
            assert all(len(owners(k)) == 1 for k in keys_)
            assert {next(iter(owners(k))) for k in keys_} == {"a", "b"}
    finally:
        await other_bus.close()


async def test_a_standby_takes_over_when_the_active_replica_dies(
    bus: Bus, bus_settings: BusSettings
):
    dying_bus = await Bus.connect(bus_settings, "replica-a")
    rec_a = WidgetReconciler("a")
    rt_a = Runtime(dying_bus, rec_a, replace(SETTINGS, instance="a"), service="widgets")
    task_a = asyncio.create_task(rt_a.run())
    try:
        await wait_for(lambda: rt_a.active.is_set(), message="a active")
        async with running(bus, replace(SETTINGS, instance="b"), standby=True) as (rt_b, rec_b):
            assert not rt_b.active.is_set()  # standby
            key = "widget.default.ha"
            await bus.apply_object(key, widget_doc("ha", interval=0.1))
            await wait_for(lambda: len(rec_a.runs[key]) >= 2, message="a works")
            assert not rec_b.runs[key]
            # a dies without releasing its lease: connection gone, then the task
            await dying_bus._nc.close()
            task_a.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task_a
            await wait_for(lambda: len(rec_b.runs[key]) >= 2, timeout=10, message="takeover")
    finally:
        if not task_a.done():
            task_a.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task_a
        await dying_bus.close()


@pytest.mark.parametrize("workers", [pytest.param(1, id="one-worker"), pytest.param(8, id="eight")])
async def test_a_restarted_runtime_resumes_every_object(bus: Bus, workers: int):
    keys_ = [f"widget.default.r{i}" for i in range(5)]
    for i, key in enumerate(keys_):
        await bus.apply_object(key, widget_doc(f"r{i}", interval=3600))
    settings = replace(SETTINGS, workers=workers)
    async with running(bus, settings) as (_, rec):
        await wait_for(lambda: all(rec.runs[k] for k in keys_), message="first start")
    async with running(bus, settings) as (_, rec):
        await wait_for(lambda: all(rec.runs[k] for k in keys_), message="after restart")
