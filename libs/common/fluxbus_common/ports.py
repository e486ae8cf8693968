"""The narrow contracts services read and write the store through.

Reconcilers take these `Protocol`s, never the concrete `Bus` (which satisfies
all of them); tests may hand in anything that does the same. The types the
ports speak (`Entry`, `KVChange`, `ApplyResult`, the errors) live here, beside
them, not in the adapter.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from fluxbus_common.events import Event


class BusError(Exception):
    """Any failure talking to NATS, with the library's exception as cause."""


class RevisionConflict(BusError):
    """A compare-and-set write lost: the key moved on since it was read."""


@dataclass(frozen=True)
class Entry:
    """One KV value: the decoded JSON document and its revision."""

    key: str
    value: dict[str, Any]
    revision: int


@dataclass(frozen=True)
class KVChange:
    """One KV watch notification; `value` is None when the key was deleted."""

    key: str
    value: dict[str, Any] | None
    revision: int


@dataclass(frozen=True)
class KVRevision:
    """One stored revision of a key (history included); `value` is None for a deletion."""

    key: str
    value: dict[str, Any] | None
    revision: int
    created: datetime
    """When the server stored it (UTC)."""


ApplyResult = Literal["created", "configured", "unchanged"]
"""What writing a desired object did."""


class StatusReader(Protocol):
    """Read other objects' status (a source's artifact, a dependency's readiness)."""

    async def get_status(self, key: str) -> Entry | None:
        """Return an object's status entry, or None before its first reconcile."""
        ...

    def watch_status(self, kind: str) -> AsyncIterator[KVChange]:
        """Yield the status of every object of a kind, then every change."""
        ...

    def kv_watch(
        self,
        bucket: str,
        pattern: str = ">",
        *,
        initial_only: bool = False,
        mark_initial: bool = False,
    ) -> AsyncIterator[KVChange]:
        """Yield the current value of every matching key, then every change."""
        ...


class ObjectStore(Protocol):
    """Desired objects in the fluxbus store (toolkit kinds applied from Git)."""

    async def get_object(self, key: str) -> Entry | None:
        """Return a desired object (without status) by key."""
        ...

    async def apply_object(self, key: str, doc: dict[str, Any]) -> ApplyResult:
        """Create or update a desired object as an API server would."""
        ...

    async def request_delete(self, key: str) -> bool:
        """Delete an object (through its finalizer when it has one); False if absent."""
        ...


class ObjectEditor(Protocol):
    """Compare-and-set edits of stored objects (annotations, finalizers, suspend)."""

    async def get_object(self, key: str) -> Entry | None:
        """Return a desired object (without status) by key."""
        ...

    async def update_object(self, key: str, doc: dict[str, Any], revision: int) -> int:
        """Write `doc` as is if the key is still at `revision`; return the new revision.

        Raises RevisionConflict when the key moved on."""
        ...


class SecretReader(Protocol):
    """Secrets and ConfigMaps kept in the fluxbus store."""

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """Return a Secret document, or None when absent."""
        ...

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        """Return a ConfigMap document, or None when absent."""
        ...


class ArtifactStore(Protocol):
    """Versioned artifacts (tarballs) in the object store."""

    async def put_artifact(self, name: str, path: Path) -> int:
        """Stream a file in under `name`; return its size."""
        ...

    async def get_artifact(self, name: str, dest: Path) -> None:
        """Stream an artifact into `dest`; raise KeyError when it does not exist."""
        ...

    async def artifact_size(self, name: str) -> int | None:
        """Return the stored size of an artifact, or None when it does not exist."""
        ...

    async def delete_artifact(self, name: str) -> None:
        """Delete an artifact (absent is fine)."""
        ...

    async def list_artifacts(self, prefix: str = "") -> list[str]:
        """Return the names of stored artifacts starting with `prefix`, sorted by name."""
        ...


class EventPublisher(Protocol):
    """The durable events stream."""

    async def publish_event(self, event: Event, *, event_id: str | None = None) -> None:
        """Publish an event durably (stored once per `event_id`); raise BusError on failure."""
        ...

    async def emit_event(self, event: Event, event_id: str | None = None) -> str:
        """Publish an event now or, while NATS is unreachable, as soon as it is back
        (in order, from a bounded outbox); never raises BusError. Return its stable id."""
        ...
