"""Toolkit objects found in a Kustomization's output (GitRepository,
Kustomization, …) go into the fluxbus store instead of the cluster: their
"dry-run" (`plan_store`: parse and validate each document), their apply
(`apply_store`, honouring the same per-object policies as the cluster) and
their prune (`prune_from_store`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fluxbus_common import subjects
from fluxbus_common.api import KindInfo, UnknownKind, kind_for
from fluxbus_common.api.registry import parse_object
from fluxbus_common.conditions import Reason
from fluxbus_common.errors import Generic
from fluxbus_common.ports import BusError, ObjectStore
from fluxbus_kube.logic.ordering import group_of, sort_key
from fluxbus_kube.logic.policy import Action, apply_policy
from fluxbus_kube.resources import Change, Ref, Resource
from fluxbus_kustomize.logic.inventory import InventoryEntry
from fluxbus_kustomize.logic.operator_fields import keep_operator_fields


def store_info(api_version: str, kind: str) -> KindInfo | None:
    """Return the KindInfo of a toolkit kind kept in the fluxbus store, else None."""
    try:
        info = kind_for(api_version, kind)
    except UnknownKind:
        return None
    return info if info.store == "objects" else None


def in_store(ref: Ref) -> bool:
    """Return whether the object lives in the fluxbus store (not the cluster)."""
    return store_info(ref.resource.api_version, ref.resource.kind) is not None


def store_ref(api_version: str, info: KindInfo, namespace: str, name: str) -> Ref:
    """Return the Ref of a toolkit object (all toolkit kinds are namespaced)."""
    resource = Resource(
        group_of(api_version), api_version.rsplit("/", 1)[-1], info.kind, info.plural, True
    )
    return Ref(resource, namespace, name)


@dataclass(frozen=True)
class StoreWrite:
    """One toolkit object bound for the store: its Ref, its store key, the document."""

    ref: Ref
    key: str
    doc: dict[str, Any]


def plan_store(docs: Sequence[Mapping[str, Any]]) -> list[StoreWrite]:
    """Validate the toolkit objects bound for the store (the store's dry-run).

    Raises Generic(ReconciliationFailed) listing every invalid object.
    """
    plan: list[StoreWrite] = []
    failures: list[str] = []
    for doc in sorted(docs, key=sort_key):
        info = store_info(str(doc.get("apiVersion")), str(doc.get("kind")))
        meta = doc.get("metadata") or {}
        name, ns = str(meta.get("name") or ""), str(meta.get("namespace") or "")
        desc = f"{doc.get('kind')}/{ns}/{name}" if ns else f"{doc.get('kind')}/{name}"
        if not ns:
            failures.append(f"{desc} namespace not specified")
            continue
        try:
            parse_object(doc)
        except ValueError as e:
            failures.append(f"{desc} dry-run failed: {e}")
            continue
        assert info is not None  # only toolkit kinds are planned here
        key = subjects.object_key(info.kind, ns, name)
        plan.append(StoreWrite(store_ref(str(doc["apiVersion"]), info, ns, name), key, dict(doc)))
    if failures:
        raise Generic("\n".join(failures), Reason.RECONCILIATION_FAILED)
    return plan


async def apply_store(store: ObjectStore, plan: Sequence[StoreWrite]) -> list[Change]:
    """Write the planned objects (skipping those their policy skips); return one
    Change per object.

    Raises Generic(ReconciliationFailed) on the first store failure.
    """
    changes: list[Change] = []
    for write in plan:
        try:
            live = await store.get_object(write.key)
            policy = apply_policy(write.doc, live.value if live else None)
            if policy.action is Action.SKIP:
                changes.append(Change(write.ref, "skipped"))
                continue
            doc = keep_operator_fields(write.doc, live.value if live else None)
            result = await store.apply_object(write.key, doc)
        except BusError as e:
            raise Generic(
                f"{write.ref.describe()} apply failed: {e}", Reason.RECONCILIATION_FAILED
            ) from e
        changes.append(Change(write.ref, result))
    return changes


async def prune_from_store(
    store: ObjectStore,
    entry: InventoryEntry,
    info: KindInfo,
    ours: Callable[[Mapping[str, Any]], bool],
) -> Change | None:
    """Delete an inventory entry's toolkit object when `ours(live)` says it may go;
    return the deletion, or None when there was nothing of ours to delete.

    Raises BusError.
    """
    meta = entry.meta
    key = subjects.object_key(info.kind, meta.namespace, meta.name)
    live = await store.get_object(key)
    if live is None or not ours(live.value):
        return None
    await store.request_delete(key)
    resource = Resource(meta.group, entry.v, meta.kind, info.plural, True)
    return Change(Ref(resource, meta.namespace, meta.name), "deleted")
