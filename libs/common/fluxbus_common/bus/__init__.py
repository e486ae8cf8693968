"""The NATS adapter: the only package of libs/common that imports `nats`.

It creates (idempotently) and uses the buckets, object store and stream of
DESIGN.md §2. `Bus` is one façade over one connection, composed of a part per
concern:

- `connection`: connect (credentials, TLS), create buckets/store/stream, close;
- `kv`: typed get/put/delete/list/watch with compare-and-set by revision;
- `objects`: desired objects (apply, delete through finalizers), status,
  Secrets and ConfigMaps;
- `artifacts`: streamed artifacts in the object store;
- `events`: Flux-schema events, published durably and consumed at least once;
- `leases`: shard leases and group heartbeats;
- `heartbeats`: every service instance's heartbeat (`fluxbus check`);
- `logs`: structured log records on the bounded logs stream (`fluxbus logs`).

Callers use `await Bus.connect(settings, name)`; reconcilers should take the
narrow `fluxbus_common.ports` Protocols it satisfies rather than `Bus`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fluxbus_common.bus.artifacts import Artifacts
from fluxbus_common.bus.events import Delivery, Events
from fluxbus_common.bus.heartbeats import Heartbeats
from fluxbus_common.bus.leases import Leases
from fluxbus_common.bus.logs import Logs
from fluxbus_common.bus.objects import Objects

if TYPE_CHECKING:
    from fluxbus_common.ports import (
        ArtifactStore,
        EventPublisher,
        ObjectEditor,
        ObjectStore,
        SecretReader,
        StatusReader,
    )

__all__ = ["Bus", "Delivery"]


class Bus(Objects, Leases, Heartbeats, Logs, Artifacts, Events):
    """A connection to the fluxbus control plane. Use `await Bus.connect(...)`."""


if TYPE_CHECKING:

    def _serves_every_port(
        bus: Bus,
    ) -> tuple[
        StatusReader, ObjectStore, ObjectEditor, SecretReader, ArtifactStore, EventPublisher
    ]:
        """mypy checks here that `Bus` structurally satisfies every port."""
        return bus, bus, bus, bus, bus, bus
