"""The service composition root: endpoints, readiness, and a clean SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
import time

import aiohttp

from fluxbus_common.bus import Bus
from fluxbus_common.settings import BusSettings
from fluxbus_common.testing.plugin import wait_for
from fluxbus_common.testing.widgets import widget_doc

SERVICE = r"""
import asyncio, sys
from fluxbus_common import logconfig
from fluxbus_common.service import run_service
from fluxbus_common.settings import BusSettings, RuntimeSettings
from fluxbus_common.testing.widgets import WidgetReconciler

async def make(bus):
    return [WidgetReconciler("svc")]

def ready(runtimes, port):
    print(f"PORT {port}", file=sys.stderr, flush=True)

logconfig.configure("info", json=True)
asyncio.run(run_service("widgets", make, bus_settings=BusSettings(url=sys.argv[1]),
    runtime_settings=RuntimeSettings(http_addr="127.0.0.1:0", instance="svc", lease_ttl=30),
    on_ready=ready))
"""


async def test_a_service_serves_health_ready_and_metrics_then_stops_on_sigterm(
    bus: Bus, bus_settings: BusSettings
):
    await bus.apply_object("widget.default.svc", widget_doc("svc", interval=3600))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVICE,
        bus_settings.url,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        async with asyncio.timeout(20):
            while b"PORT" not in (line := await proc.stderr.readline()):
                assert line, "service exited before it was ready"
        port = int(line.split()[1])
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:

            async def ok(path: str) -> bool:
                async with http.get(base + path) as r:
                    return r.status == 200

            assert await ok("/healthz")
            await wait_for(lambda: ok("/readyz"), message="ready")
            await wait_for(lambda: _reconciled(bus, "widget.default.svc"), message="reconciled")
            async with http.get(base + "/metrics") as r:
                text = await r.text()
            assert 'fluxbus_reconcile_total{kind="widget",result="success"}' in text
            assert "fluxbus_reconcile_duration_seconds_bucket" in text
            assert "fluxbus_workqueue_depth" in text

        # the lease is held with a 30 s TTL: only a clean shutdown releases it early
        assert await bus.lease_holders(["widgets.widget.0"]) == {"widgets.widget.0": "svc"}
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            code = await proc.wait()
        assert code == 0
        assert time.monotonic() - start < 10  # well within a 30 s grace period
        assert await bus.lease_holders(["widgets.widget.0"]) == {}
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _reconciled(bus: Bus, key: str) -> bool:
    entry = await bus.get_status(key)
    return entry is not None and entry.value.get("observedGeneration") == 1


async def test_a_service_runs_its_background_tasks_beside_the_runtimes_and_stops_them(
    bus_settings: BusSettings,
):
    from fluxbus_common.service import run_service
    from fluxbus_common.settings import RuntimeSettings
    from fluxbus_common.testing.widgets import WidgetReconciler

    stop = asyncio.Event()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def dispatcher() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def make(bus: Bus) -> list[WidgetReconciler]:
        return [WidgetReconciler("bg")]

    service = asyncio.create_task(
        run_service(
            "bg",
            make,
            bus_settings=bus_settings,
            runtime_settings=RuntimeSettings(http_addr="", instance="bg", lease_ttl=2),
            stop=stop,
            background=lambda bus, runtimes: {"dispatcher": dispatcher()},
        )
    )
    async with asyncio.timeout(10):
        await started.wait()
        stop.set()
        await service
    assert cancelled.is_set()
