"""Kustomization inventory: entry ids, parsing, and the stale-object diff.

Flux records every applied object in `status.inventory.entries` as
`{"id": "<namespace>_<name>_<group>_<Kind>", "v": "<version>"}`: a
cluster-scoped object has an empty namespace, a core-group object an empty
group (`default_podinfo__Service`). As in cli-utils, a `:` in a name (RBAC
names such as `system:auth`) is written `__`. Entries are sorted by id.

Objects that left the inventory are pruned, unless the live object carries
`kustomize.toolkit.fluxcd.io/prune: disabled` (or `reconcile: disabled`).

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fluxbus_kube.logic.ordering import group_of, kind_index
from fluxbus_kube.logic.policy import may_prune

_SEP = "_"
_COLON = "__"


class InventoryError(ValueError):
    """An inventory id does not parse."""


@dataclass(frozen=True, order=True)
class ObjMetadata:
    """The identity of an object, without its version."""

    namespace: str
    name: str
    group: str
    kind: str

    @property
    def id(self) -> str:
        """Return the inventory id `<ns>_<name>_<group>_<Kind>`."""
        name = self.name.replace(":", _COLON)
        return _SEP.join((self.namespace, name, self.group, self.kind))

    @classmethod
    def parse(cls, entry_id: str) -> ObjMetadata:
        """Parse an inventory id; raise InventoryError when malformed."""
        first = entry_id.find(_SEP)
        parts = entry_id.rsplit(_SEP, 2)
        if first == -1 or len(parts) != 3 or first >= len(parts[0]):
            raise InventoryError(f"invalid inventory id {entry_id!r}")
        namespace = entry_id[:first]
        name = parts[0][first + 1 :]
        group, kind = parts[1], parts[2]
        if not name or not kind:
            raise InventoryError(f"invalid inventory id {entry_id!r}")
        return cls(namespace, name.replace(_COLON, ":"), group, kind)

    def describe(self) -> str:
        """Return `Kind/namespace/name` (or `Kind/name`) as Flux prints it."""
        return (
            f"{self.kind}/{self.namespace}/{self.name}"
            if self.namespace
            else f"{self.kind}/{self.name}"
        )


@dataclass(frozen=True)
class InventoryEntry:
    """One `status.inventory.entries[]` item."""

    id: str
    v: str

    @property
    def meta(self) -> ObjMetadata:
        return ObjMetadata.parse(self.id)

    @property
    def api_version(self) -> str:
        """Return the apiVersion to address the object with (`apps/v1`, `v1`)."""
        group = self.meta.group
        return f"{group}/{self.v}" if group else self.v

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "v": self.v}


def meta_of(obj: Mapping[str, Any]) -> ObjMetadata:
    """Return the identity of a Kubernetes object (dict)."""
    meta = obj.get("metadata") or {}
    return ObjMetadata(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        group=group_of(str(obj.get("apiVersion", ""))),
        kind=str(obj.get("kind", "")),
    )


def entry_of(obj: Mapping[str, Any]) -> InventoryEntry:
    """Return the inventory entry of a Kubernetes object."""
    api_version = str(obj.get("apiVersion", ""))
    version = api_version.rsplit("/", 1)[-1]
    return InventoryEntry(meta_of(obj).id, version)


def inventory_of(objects: Iterable[Mapping[str, Any]]) -> list[InventoryEntry]:
    """Return the inventory of applied objects: one entry per object, sorted by id."""
    entries = {entry_of(obj).id: entry_of(obj) for obj in objects}
    return [entries[k] for k in sorted(entries)]


def parse_entries(raw: Iterable[Mapping[str, Any]] | None) -> list[InventoryEntry]:
    """Return entries from `status.inventory.entries` (dicts with `id` and `v`)."""
    return [InventoryEntry(str(e["id"]), str(e.get("v", ""))) for e in raw or []]


def stale_entries(
    old: Iterable[InventoryEntry], new: Iterable[InventoryEntry]
) -> list[InventoryEntry]:
    """Return the entries of `old` whose object is not in `new` (version ignored),
    in deletion order (reverse of the apply order)."""
    current = {e.meta for e in new}
    stale = [e for e in old if e.meta not in current]

    def key(e: InventoryEntry) -> tuple[int, str, str, str, str]:
        m = e.meta
        return (kind_index(m.kind), m.group, m.kind, m.namespace, m.name)

    return sorted(stale, key=key, reverse=True)


@dataclass(frozen=True)
class PrunePlan:
    """What garbage collection does with the stale entries."""

    delete: list[InventoryEntry]
    skipped: list[InventoryEntry]
    """Stale but protected by `prune: disabled` / `reconcile: disabled`."""
    gone: list[InventoryEntry]
    """Stale and already absent from the cluster."""


def plan_prune(
    stale: Iterable[InventoryEntry], live: Mapping[str, Mapping[str, Any] | None]
) -> PrunePlan:
    """Split stale entries by the live objects (`live[id]`, None or absent when gone)."""
    delete: list[InventoryEntry] = []
    skipped: list[InventoryEntry] = []
    gone: list[InventoryEntry] = []
    for entry in stale:
        obj = live.get(entry.id)
        if obj is None:
            gone.append(entry)
        elif may_prune(obj):
            delete.append(entry)
        else:
            skipped.append(entry)
    return PrunePlan(delete, skipped, gone)
