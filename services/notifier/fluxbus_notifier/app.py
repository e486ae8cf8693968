"""Composition root of the notifier service: wiring only.

The bus, the notifier's shared state (`state`), the Provider, Alert and
Receiver reconcilers (served by the shared runtime) and, beside them, the
dispatcher that consumes the events stream (`dispatch`) and the Receivers'
webhook server (`receivers.server`) — all run by
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
from fluxbus_notifier.receivers.reconciler import ReceiverReconciler
from fluxbus_notifier.receivers.server import ReceiverServer
from fluxbus_notifier.receivers.settings import ReceiverSettings
from fluxbus_notifier.reconcilers import AlertReconciler, ProviderReconciler
from fluxbus_notifier.settings import DEFAULT_HTTP_ADDR, NotifierSettings
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
    receiver_settings: ReceiverSettings | None = None,
    on_ready: Callable[[list[Runtime], Dispatcher], None] | None = None,
) -> None:
    """Run the notifier until stopped (SIGTERM/SIGINT or `stop`).

    `on_ready(runtimes, dispatcher)` is called once everything has started
    (the dispatcher's `synced` is set once its consumer is bound).
    """
    runtime_settings = runtime_settings or RuntimeSettings.from_env(
        default_http_addr=DEFAULT_HTTP_ADDR
    )
    settings = settings or NotifierSettings.from_env()
    receiver_settings = receiver_settings or ReceiverSettings.from_env()
    states: list[NotifierState] = []
    dispatchers: list[Dispatcher] = []

    async def make(bus: Bus) -> Sequence[Reconciler[Any]]:
        state = NotifierState(bus, settings.dedup_window)
        await state.open()
        states.append(state)
        recorder = EventRecorder(bus, CONTROLLER, runtime_settings.instance)
        return [
            ProviderReconciler(bus, state),
            AlertReconciler(bus),
            ReceiverReconciler(bus, recorder),
        ]

    def background(bus: Bus, runtimes: list[Runtime]) -> Mapping[str, Coroutine[Any, Any, None]]:
        recorder = EventRecorder(bus, CONTROLLER, runtime_settings.instance)
        dispatcher = Dispatcher(bus, states[0], recorder, settings)
        dispatchers.append(dispatcher)
        receivers = ReceiverServer(
            bus, receiver_settings.addr, max_body=receiver_settings.max_body, recorder=recorder
        )
        return {"dispatch": dispatcher.run(), "receivers": receivers.run()}

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
