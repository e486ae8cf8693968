"""What the notifier delivery tests share: documents (Provider, Alert, Secret),
events, status readers and a notifier run in-process for an `async with` block."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fluxbus_common import subjects
from fluxbus_common.bus import Bus
from fluxbus_common.events import Event, ObjectReference, Severity
from fluxbus_common.runtime import Runtime
from fluxbus_common.settings import BusSettings, RuntimeSettings
from fluxbus_common.tasks import cancel_and_wait
from fluxbus_common.testing.plugin import wait_for
from fluxbus_notifier import app
from fluxbus_notifier.dispatch import Dispatcher
from fluxbus_notifier.receivers.settings import ReceiverSettings
from fluxbus_notifier.settings import NotifierSettings

FAST = NotifierSettings(retry_base=0.05, retry_cap=0.2, delivery_timeout=5.0)
"""Quick retries, so that outages and give-ups play out within seconds."""


def provider(name: str, address: str | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
        "kind": "Provider",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": "generic", **({"address": address} if address else {}), **spec},
    }


def alert(
    name: str,
    provider_name: str,
    *,
    sources: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
        "kind": "Alert",
        "metadata": {"name": name, "namespace": "default", "annotations": annotations or {}},
        "spec": {
            "providerRef": {"name": provider_name},
            "eventSources": sources or [{"kind": "Kustomization", "name": "*"}],
            **spec,
        },
    }


def secret(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "default"},
        "stringData": data,
    }


def event(
    name: str,
    message: str,
    *,
    severity: Severity = Severity.INFO,
    reason: str = "ReconciliationSucceeded",
    revision: str | None = None,
    kind: str = "Kustomization",
) -> Event:
    return Event(
        involved_object=ObjectReference(kind=kind, namespace="default", name=name),
        severity=severity,
        message=message,
        reason=reason,
        metadata={"revision": revision} if revision else {},
        reporting_controller="kustomize-controller",
    )


async def apply(bus: Bus, *docs: dict[str, Any]) -> None:
    """Store toolkit objects (Secrets go to the secrets bucket)."""
    for doc in docs:
        meta = doc["metadata"]
        if doc["kind"] == "Secret":
            await bus.put_secret(meta["namespace"], meta["name"], doc)
        else:
            await bus.apply_object(
                subjects.object_key(doc["kind"], meta["namespace"], meta["name"]), doc
            )


async def ready_condition(bus: Bus, kind: str, name: str) -> dict[str, Any] | None:
    """The Ready condition in an object's status, or None."""
    entry = await bus.get_status(subjects.object_key(kind, "default", name))
    if entry is None:
        return None
    return next((c for c in entry.value.get("conditions", []) if c["type"] == "Ready"), None)


@contextlib.asynccontextmanager
async def running_notifier(
    bus_settings: BusSettings,
    settings: NotifierSettings = FAST,
    *,
    instance: str = "notifier-0",
) -> AsyncIterator[tuple[list[Runtime], Dispatcher]]:
    """Run the notifier service in-process; the block begins once it consumes events."""
    started: asyncio.Future[tuple[list[Runtime], Dispatcher]] = (
        asyncio.get_running_loop().create_future()
    )
    stop = asyncio.Event()
    task = asyncio.create_task(
        app.run(
            bus_settings,
            RuntimeSettings(http_addr="", instance=instance, lease_ttl=5),
            stop=stop,
            settings=settings,
            receiver_settings=ReceiverSettings(addr="127.0.0.1:0"),
            on_ready=lambda runtimes, d: started.set_result((runtimes, d)),
        ),
        name=f"notifier-{instance}",
    )
    try:
        async with asyncio.timeout(20):
            done, _ = await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                task.result()  # raises what stopped it
            runtimes, dispatcher = started.result()
            await dispatcher.synced.wait()
        yield runtimes, dispatcher
    finally:
        stop.set()
        try:
            async with asyncio.timeout(15):
                await task
        except TimeoutError:
            await cancel_and_wait(task)
            raise


async def until_received(sink: Any, count: int, path: str | None = None) -> None:
    await wait_for(
        lambda: len(sink.messages(path)) >= count,
        timeout=15,
        message=f"{count} notifications at the sink",
    )
