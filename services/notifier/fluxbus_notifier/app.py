"""Composition root of the notifier service: wiring only.

The bus, the notifier's shared state (`state`), the Provider and Alert
reconcilers (served by the shared runtime) and, beside them, the dispatcher
that consumes the events stream (`dispatch`) — all run by
`fluxbus_common.service.run_service` until SIGTERM.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from fluxbus_common.bus import Bus
from fluxbus_common.reconcile import Reconciler
from fluxbus_common.runtime import EventRecorder, Runtime
from fluxbus_common.service import run_service
from fluxbus_common.settings import BusSettings, RuntimeSettings
from fluxbus_notifier.dispatch import Dispatcher
from fluxbus_notifier.reconcilers import AlertReconciler, ProviderReconciler
from fluxbus_notifier.settings import NotifierSettings
from fluxbus_notifier.state import NotifierState

SERVICE = "notifier"
CONTROLLER = "notification-controller"
"""`reportingController` of the notifier's own events, as Flux names it."""


async def run(
    bus_settings: BusSettings | None = None,
    runtime_settings: RuntimeSettings | None = None,
    *,
    stop: asyncio.Event | None = None,
    settings: NotifierSettings | None = None,
    on_ready: Callable[[list[Runtime], Dispatcher], None] | None = None,
) -> None:
    """Run the notifier until stopped (SIGTERM/SIGINT or `stop`).

    `on_ready(runtimes, dispatcher)` is called once everything has started
    (the dispatcher's `synced` is set once its consumer is bound).
    """
    runtime_settings = runtime_settings or RuntimeSettings.from_env()
    settings = settings or NotifierSettings.from_env()
    states: list[NotifierState] = []
    dispatchers: list[Dispatcher] = []

    async def make(bus: Bus) -> Sequence[Reconciler[Any]]:
        state = NotifierState(bus, settings.dedup_window)
        await state.open()
        states.append(state)
        return [
            ProviderReconciler(bus, state),
            AlertReconciler(bus),
            # -- the lead wires the Receiver reconciler here (branch notif-receivers) --
        ]

    def background(bus: Bus, runtimes: list[Runtime]) -> Mapping[str, Coroutine[Any, Any, None]]:
        recorder = EventRecorder(bus, CONTROLLER, runtime_settings.instance)
        dispatcher = Dispatcher(bus, states[0], recorder, settings)
        dispatchers.append(dispatcher)
        return {
            "dispatch": dispatcher.run(),
            # -- the lead wires the Receiver HTTP server here, on settings.receiver_addr
            #    (branch notif-receivers) --
        }

    def ready(runtimes: list[Runtime], _port: int) -> None:
        if on_ready is not None:
            on_ready(runtimes, dispatchers[0])

    await run_service(
        SERVICE,
        make,
        bus_settings=bus_settings,
        runtime_settings=runtime_settings,
        stop=stop,
        background=background,
        on_ready=ready,
    )
