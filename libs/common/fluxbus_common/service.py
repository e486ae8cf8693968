"""Composition root shared by every service: connect the bus, serve
/healthz /readyz /metrics, run one Runtime per reconciler, publish the
instance's heartbeat (`fluxbus_common.liveness`) and ship its log records
(`fluxbus_common.logship`), stop on SIGTERM.

SIGTERM (or SIGINT) sets a stop event; the runtimes are cancelled, leases
released, NATS drained, and the process exits well within Kubernetes' 30 s
grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from fluxbus_common.backoff import exponential
from fluxbus_common.bus import Bus
from fluxbus_common.httpserver import start_http
from fluxbus_common.liveness import MISSED_BEATS, Heartbeat, rfc3339
from fluxbus_common.logship import SHIPPER
from fluxbus_common.metrics import Metrics
from fluxbus_common.ports import BusError
from fluxbus_common.reconcile import Reconciler
from fluxbus_common.runtime import Runtime
from fluxbus_common.settings import BusSettings, RuntimeSettings
from fluxbus_common.tasks import cancel_and_wait, raise_if_cancelling
from fluxbus_common.usage import version

log = structlog.get_logger("fluxbus.service")


async def connect_with_retry(settings: BusSettings, name: str, stop: asyncio.Event) -> Bus | None:
    """Connect to NATS, backing off while it is unreachable; None if stopped first."""
    delays = exponential(base=0.5, cap=10.0)
    while not stop.is_set():
        try:
            return await Bus.connect(settings, name)
        except BusError as e:
            delay = next(delays)
            log.warning("bus.unreachable", error=str(e), retry_in_s=round(delay, 1))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()
    return None


REMOVE_TIMEOUT = 2.0
"""How long a stopping instance tries to remove its heartbeat (else it expires)."""


async def _all_synced(runtimes: Sequence[Runtime]) -> None:
    for rt in runtimes:
        await rt.synced.wait()


async def publish_heartbeats(
    bus: Bus,
    service: str,
    settings: RuntimeSettings,
    runtimes: Sequence[Runtime],
    ready: Callable[[], bool],
    http_port: int = 0,
) -> None:
    """Write this instance's heartbeat every `settings.heartbeat_interval` seconds
    (and at once when it becomes ready) until cancelled; then remove it, so a
    clean stop is seen at once (a crash is seen when the heartbeat's ttl passes)."""
    started = rfc3339(datetime.now(UTC))
    interval = max(0.05, settings.heartbeat_interval)
    synced = asyncio.create_task(_all_synced(runtimes), name=f"{service}-heartbeat-synced")
    failing = False
    try:
        while True:
            raise_if_cancelling()
            beat = Heartbeat(
                service=service,
                instance=settings.instance,
                version=version(),
                kinds=tuple(rt.kind for rt in runtimes),
                shards={rt.kind: rt.owned_shards for rt in runtimes},
                shard_count=max(1, settings.shards),
                started=started,
                last_seen=rfc3339(datetime.now(UTC)),
                ttl=interval * MISSED_BEATS,
                ready=ready(),
                http_port=http_port,
            )
            try:
                await bus.put_heartbeat(beat)
                if failing:
                    log.info("heartbeat.restored", service=service)
                failing = False
            except BusError as e:
                if not failing:  # one warning per outage
                    log.warning("heartbeat.failed", service=service, error=str(e))
                failing = True
            if not beat.ready and not synced.done():
                await asyncio.wait([synced], timeout=interval)  # wakes once ready
            else:
                await asyncio.sleep(interval)
    finally:
        await cancel_and_wait(synced)
        with contextlib.suppress(BusError, TimeoutError):
            async with asyncio.timeout(REMOVE_TIMEOUT):
                await bus.remove_heartbeat(service, settings.instance)


async def run_service(
    name: str,
    make_reconcilers: Callable[[Bus], Awaitable[Sequence[Reconciler[Any]]]],
    *,
    bus_settings: BusSettings | None = None,
    runtime_settings: RuntimeSettings | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[list[Runtime], int], None] | None = None,
    background: Callable[[Bus, list[Runtime]], Mapping[str, Coroutine[Any, Any, None]]]
    | None = None,
) -> None:
    """Run a service until `stop` is set (or SIGTERM/SIGINT arrives).

    `make_reconcilers(bus)` builds the service's reconcilers once connected.
    `background(bus, runtimes)` returns the service's other long-running
    tasks by name (a dispatcher, a webhook server); they run beside the
    runtimes in the same TaskGroup and are cancelled with them on stop.
    `on_ready(runtimes, http_port)` is called once everything has started.
    """
    bus_settings = bus_settings or BusSettings.from_env()
    runtime_settings = runtime_settings or RuntimeSettings.from_env()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        async with contextlib.AsyncExitStack() as stack:
            bus = await connect_with_retry(bus_settings, name, stop)
            if bus is None:
                return
            stack.push_async_callback(bus.close)
            metrics = Metrics()
            metrics.track_outbox(bus.outbox)
            runtimes = [
                Runtime(bus, r, runtime_settings, service=name, metrics=metrics)
                for r in await make_reconcilers(bus)
            ]
            port = 0

            def ready() -> bool:
                return bus.connected and all(rt.synced.is_set() for rt in runtimes)

            if runtime_settings.http_addr:
                runner, port = await start_http(runtime_settings.http_addr, metrics, ready)
                stack.push_async_callback(runner.cleanup)
            log.info(
                "service.started", service=name, kinds=[rt.kind for rt in runtimes], http_port=port
            )
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(rt.run(), name=f"{name}-{rt.kind}") for rt in runtimes]
                if SHIPPER.installed:
                    tasks.append(
                        tg.create_task(
                            SHIPPER.run(bus, name, runtime_settings.instance), name=f"{name}-logs"
                        )
                    )
                tasks.append(
                    tg.create_task(
                        publish_heartbeats(bus, name, runtime_settings, runtimes, ready, port),
                        name=f"{name}-heartbeat",
                    )
                )
                if background is not None:
                    for task_name, coro in background(bus, runtimes).items():
                        tasks.append(tg.create_task(coro, name=f"{name}-{task_name}"))
                if on_ready is not None:
                    on_ready(runtimes, port)
                await stop.wait()
                log.info("service.stopping", service=name)
                for t in tasks:
                    t.cancel()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    log.info("service.stopped", service=name)
