"""The runtime while leases move: at no moment do two replicas reconcile the same
object, whether a shard is handed over to a joining replica or NATS restarts
under both (issue "Faults of the bus and the runtime")."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

from fluxbus_common.bus import Bus
from fluxbus_common.runtime import Runtime, shard_of
from fluxbus_common.settings import BusSettings, RuntimeSettings
from fluxbus_common.testing.ledger import Ledger
from fluxbus_common.testing.plugin import NatsServer, wait_for
from fluxbus_common.testing.widgets import Widget, WidgetReconciler, widget_doc

SETTINGS = RuntimeSettings(
    workers=8, shards=2, lease_ttl=1.5, instance="a", http_addr="", backoff_base=0.05
)


class LedgerWidgets(WidgetReconciler):
    """Widgets whose every reconcile is written into a ledger shared by the replicas."""

    def __init__(self, instance: str, ledger: Ledger) -> None:
        super().__init__(instance)
        self.ledger = ledger

    async def reconcile_widget(self, obj: Widget, state: None):  # type: ignore[override]
        with self.ledger.record(obj.key, self.instance):
            return await super().reconcile_widget(obj, state)


@contextlib.asynccontextmanager
async def replica(
    bus_settings: BusSettings, instance: str, ledger: Ledger, settings: RuntimeSettings = SETTINGS
) -> AsyncIterator[Runtime]:
    bus = await Bus.connect(bus_settings, instance)
    runtime = Runtime(
        bus, LedgerWidgets(instance, ledger), replace(settings, instance=instance), service="w"
    )
    task = asyncio.create_task(runtime.run())
    try:
        yield runtime
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await bus.close()


async def test_a_shard_handed_to_a_joining_replica_is_never_reconciled_by_both(
    bus: Bus, bus_settings: BusSettings
):
    """A holds both shards and runs long reconciles; B joins and gets shard 1. A must
    stop its shard-1 reconciles before B starts any."""
    ledger = Ledger()
    keys = [f"widget.default.w{i}" for i in range(8)]
    assert {shard_of(k, 2) for k in keys} == {0, 1}
    for i, key in enumerate(keys):
        await bus.apply_object(key, widget_doc(f"w{i}", interval=0.05, delay=2.0))
    async with replica(bus_settings, "a", ledger) as a:
        await wait_for(
            lambda: ledger.running() >= 6,
            message="a running long reconciles in both shards",
        )
        async with replica(bus_settings, "b", ledger) as b:
            await wait_for(lambda: len(b._owned) == 1, timeout=15, message="b owns a shard")
            await wait_for(
                lambda: sum(1 for r in ledger.runs if r.instance == "b") >= 4,
                timeout=15,
                message="b reconciling its shard",
            )
            assert len(a._owned) == 1
    assert ledger.overlaps() == []


async def test_a_nats_restart_never_leaves_two_replicas_owning_one_shard(tmp_path: Path):
    """NATS goes away for longer than the lease TTL and comes back: the replicas may
    change hands, but at no sampled moment do both own shard 0, and no key is
    reconciled by both at once."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    settings = replace(SETTINGS, shards=1)
    bus_settings = BusSettings(url=server.url, request_timeout=1.0)
    ledger = Ledger()
    both: list[float] = []
    try:
        seed = await Bus.connect(bus_settings, "seed")
        for i in range(4):
            await seed.apply_object(
                f"widget.default.r{i}", widget_doc(f"r{i}", interval=0.05, delay=0.2)
            )
        await seed.close()
        async with (
            replica(bus_settings, "a", ledger, settings) as a,
            replica(bus_settings, "b", ledger, settings) as b,
        ):
            await wait_for(lambda: a._owned or b._owned, message="one replica active")

            async def monitor() -> None:
                while True:
                    if a._owned and b._owned:
                        both.append(time.monotonic())
                    await asyncio.sleep(0.005)

            watcher = asyncio.create_task(monitor())
            try:
                server.stop()
                await asyncio.sleep(settings.lease_ttl * 2)  # the outage being simulated
                server.start()
                await wait_for(
                    lambda: (
                        (a._owned or b._owned)
                        and sum(1 for r in ledger.runs if r.start > time.monotonic() - 1) >= 4
                    ),
                    timeout=30,
                    message="work resumed after the restart",
                )
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
    finally:
        server.stop()
    assert both == []
    assert ledger.overlaps() == []


async def test_an_outage_is_reported_once_per_object_without_tracebacks(tmp_path: Path):
    """While NATS is down, failing reconciles' events and status writes fail again and
    again: one warning per outage (events) and per object (status writes), and no
    traceback, which is for bugs."""
    import structlog

    server = NatsServer(tmp_path / "nats")
    server.start()
    bus_settings = BusSettings(url=server.url, request_timeout=0.5)
    ledger = Ledger()
    settings = replace(SETTINGS, shards=1, lease_ttl=30, backoff_base=0.05, backoff_cap=0.2)
    try:
        seed = await Bus.connect(bus_settings, "seed")
        for i in range(3):
            await seed.apply_object(
                f"widget.default.f{i}", widget_doc(f"f{i}", interval=0.05, mode="fail")
            )
        await seed.close()
        with structlog.testing.capture_logs() as logs:
            async with replica(bus_settings, "a", ledger, settings):
                await wait_for(lambda: len(ledger.runs) >= 6, message="failing reconciles")
                server.stop()
                before = len(ledger.runs)
                await wait_for(
                    lambda: len(ledger.runs) >= before + 20,
                    timeout=30,
                    message="reconciles during the outage",
                )
                server.start()
                await wait_for(
                    lambda: any(e["event"] == "reconcile.bus_recovered" for e in logs),
                    timeout=30,
                    message="status written again",
                )
    finally:
        server.stop()
    events = [e["event"] for e in logs]
    assert events.count("event.publish_failed") <= 1, events
    assert events.count("reconcile.bus_unavailable") <= 3
    assert "reconcile.crashed" not in events
    assert not any(e.get("exc_info") for e in logs)
