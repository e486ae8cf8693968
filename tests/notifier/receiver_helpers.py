"""Helpers of the Receiver tests: Receiver and Secret documents, the Receiver
reconciler run by the controller runtime, and the webhook server beside it,
both against the test's nats-server."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fluxbus_common.bus import Bus
from fluxbus_common.conditions import ConditionType
from fluxbus_common.runtime import EventRecorder, Runtime
from fluxbus_common.settings import RuntimeSettings
from fluxbus_common.testing.plugin import running_runtime, wait_for
from fluxbus_notifier.receivers.reconciler import ReceiverReconciler
from fluxbus_notifier.receivers.server import ReceiverServer

NAMESPACE = "flux-system"
TOKEN = "s3cr3t-receiver-token-0123456789"
SETTINGS = RuntimeSettings(
    workers=2,
    shards=1,
    lease_ttl=5,
    instance="test",
    http_addr="",
    backoff_base=0.1,
    backoff_cap=1.0,
)


def receiver(
    name: str,
    type_: str = "generic",
    *,
    resources: list[dict[str, Any]] | None = None,
    secret: str = "webhook-token",
    **spec: Any,
) -> dict[str, Any]:
    """A Receiver document (spec fields camelCase)."""
    return {
        "apiVersion": "notification.toolkit.fluxcd.io/v1",
        "kind": "Receiver",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "type": type_,
            "secretRef": {"name": secret},
            "resources": resources or [{"kind": "GitRepository", "name": "podinfo"}],
            **spec,
        },
    }


def secret(name: str = "webhook-token", **data: str) -> dict[str, Any]:
    """A Secret document as the store keeps it (base64 `data`)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def gitrepository(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NAMESPACE}
    if labels:
        meta["labels"] = labels
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": meta,
        "spec": {
            "interval": "1h",
            "url": "https://example.invalid/repo.git",
            "ref": {"branch": "main"},
            **spec,
        },
    }


def key_of(kind: str, name: str) -> str:
    return f"{kind.lower()}.{NAMESPACE}.{name}"


async def status(bus: Bus, name: str) -> dict[str, Any]:
    entry = await bus.get_status(key_of("Receiver", name))
    return {} if entry is None else entry.value


def ready_of(st: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in st.get("conditions", []) if c["type"] == ConditionType.READY), None)


async def requested_at(bus: Bus, key: str) -> str | None:
    """The reconcile request annotation of a stored object."""
    entry = await bus.get_object(key)
    assert entry is not None, key
    return (entry.value["metadata"].get("annotations") or {}).get("reconcile.fluxcd.io/requestedAt")


@dataclass
class Receivers:
    """The Receiver reconciler's runtime and the webhook server, both running."""

    runtime: Runtime
    server: ReceiverServer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def path_of(self, bus: Bus, name: str) -> str:
        """Wait until the Receiver is Ready and the server indexed it; return its path."""

        async def published() -> str | None:
            st = await status(bus, name)
            ready = ready_of(st)
            path = st.get("webhookPath")
            if ready and ready["status"] == "True" and path and self.server.index.lookup(path):
                return str(path)
            return None

        return str(await wait_for(published, message=f"receiver {name} ready"))


@contextlib.asynccontextmanager
async def receivers(bus: Bus, *, max_body: int | None = None) -> AsyncIterator[Receivers]:
    """Run the Receiver reconciler and the webhook server (on a free port)."""
    recorder = EventRecorder(bus, "notification-controller", "test")
    reconciler = ReceiverReconciler(bus, recorder)
    extra = {} if max_body is None else {"max_body": max_body}
    async with (
        running_runtime(bus, reconciler, SETTINGS, service="notifier") as runtime,
        ReceiverServer(bus, "127.0.0.1:0", recorder=recorder, **extra) as server,
    ):
        yield Receivers(runtime, server)
