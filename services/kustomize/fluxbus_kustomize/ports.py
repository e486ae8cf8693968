"""The contracts the Kustomization reconciler works through.

`ClusterPort` is what it needs from the target cluster (`fluxbus_kube.Cluster`
satisfies it); the types that port speaks (`Resource`, `Ref`, `Change`,
`Preview`, `Judge`) are fluxbus_kube's, and it raises `fluxbus_kube.errors.ClusterError`
/ `ApplyError`.
`KustomizeStore` is what it needs from the fluxbus store — the common ports
combined (`fluxbus_common.bus.Bus` satisfies it).

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from fluxbus_common.ports import ArtifactStore, ObjectStore, SecretReader, StatusReader
from fluxbus_kube.logic.drift import Ident
from fluxbus_kube.resources import Change, Judge, Preview, Ref, Resource


class ClusterPort(Protocol):
    """What the reconciler needs from the target cluster (`fluxbus_kube.Cluster`).

    Failures raise `fluxbus_kube.errors.ClusterError`; `apply_all` raises `ApplyError`
    carrying what was applied before the failure.
    """

    def as_user(self, user: str | None) -> ClusterPort:
        """Return a view whose requests impersonate `user` (None: the service)."""
        ...

    async def ref_of(self, obj: Mapping[str, Any]) -> Ref:
        """Return the Ref of a manifest."""
        ...

    async def resource_for(self, api_version: str, kind: str) -> Resource:
        """Return the resource of an apiVersion/kind."""
        ...

    async def get(self, ref: Ref) -> dict[str, Any] | None:
        """Return the live object, or None when it does not exist."""
        ...

    async def apply_all(
        self,
        objects: Sequence[Mapping[str, Any]],
        *,
        force: bool = False,
        timeout: float = 300.0,
        ignored: Mapping[Ident, Sequence[str]] | None = None,
    ) -> list[Change]:
        """Apply objects in Flux's stages; return one Change per object."""
        ...

    async def preview_all(
        self,
        objects: Sequence[Mapping[str, Any]],
        *,
        force: bool = False,
        ignored: Mapping[Ident, Sequence[str]] | None = None,
    ) -> list[Preview]:
        """Dry-run objects; return one Preview per object that would be applied."""
        ...

    async def delete_all(
        self, refs: Sequence[Ref], propagation: str = "Background"
    ) -> list[Change]:
        """Delete objects; return the deleted ones."""
        ...

    async def wait_gone(self, refs: Sequence[Ref], timeout: float) -> None:
        """Wait until every object is gone; raise TimeoutError naming those left."""
        ...

    async def watch_until(
        self,
        refs: Sequence[Ref],
        done: Judge,
        timeout: float,
        initial: Mapping[Ref, Mapping[str, Any] | None] | None = None,
    ) -> tuple[bool, dict[Ref, dict[str, Any] | None]]:
        """Wait until `done(ref, obj)` holds for every ref; return (done, latest states)."""
        ...


class BlobStore(Protocol):
    """Small documents in the object store (a history entry's rendered output)."""

    async def put_blob(self, name: str, data: bytes) -> None:
        """Store `data` under `name`, replacing it."""
        ...

    async def get_blob(self, name: str) -> bytes | None:
        """Return what `put_blob` stored, or None when there is none."""
        ...


class KustomizeStore(StatusReader, ObjectStore, SecretReader, ArtifactStore, BlobStore, Protocol):
    """The fluxbus store as the reconciler sees it: sources' and dependencies'
    status, toolkit objects applied from Git, substituteFrom Secrets and
    ConfigMaps, source artifacts, and the rendered output of history entries."""
