"""Garbage collection of a Kustomization's inventory entries: toolkit objects
from the fluxbus store, everything else from the cluster, and only objects
that carry the Kustomization's owner labels and no exclusion (`prune:
disabled`, `reconcile: disabled`, `ssa: Ignore`: `fluxbus_kube.logic.policy.may_prune`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fluxbus_common import keys
from fluxbus_common.conditions import Reason
from fluxbus_common.errors import Generic
from fluxbus_common.ports import BusError
from fluxbus_kube.errors import ClusterError
from fluxbus_kube.logic.policy import may_prune
from fluxbus_kube.resources import Change, Ref
from fluxbus_kustomize.logic.inventory import InventoryEntry
from fluxbus_kustomize.ports import ClusterPort, KustomizeStore
from fluxbus_kustomize.store_apply import prune_from_store, store_info

DEFINITIONS = frozenset({"CustomResourceDefinition", "Namespace", "ClusterRole"})
"""Kinds deleted last: what holds or defines other objects."""


def owned_by(live: Mapping[str, Any], owner: tuple[str, str]) -> bool:
    """Whether a live object carries the owner labels of the Kustomization `owner`
    (name, namespace) and may be pruned (`fluxbus_kube.logic.policy.may_prune`)."""
    labels = (live.get("metadata") or {}).get("labels") or {}
    wanted = {keys.KUSTOMIZE_NAME_LABEL: owner[0], keys.KUSTOMIZE_NAMESPACE_LABEL: owner[1]}
    return all(labels.get(k) == v for k, v in wanted.items()) and may_prune(live)


async def prune(
    cluster: ClusterPort,
    store: KustomizeStore,
    owner: tuple[str, str],
    entries: Sequence[InventoryEntry],
) -> list[Change]:
    """Delete inventory entries (in the given order) that may be pruned and belong
    to the Kustomization `owner` (name, namespace); return what was deleted.

    Raises Generic(PruneFailed) listing every object that could not be handled.
    """
    deleted: list[Change] = []
    cluster_refs: list[Ref] = []
    failures: list[str] = []

    def ours(live: Mapping[str, Any]) -> bool:
        return owned_by(live, owner)

    for entry in entries:
        meta = entry.meta
        info = store_info(entry.api_version, meta.kind)
        try:
            if info is not None:
                change = await prune_from_store(store, entry, info, ours)
                if change is not None:
                    deleted.append(change)
                continue
            try:
                resource = await cluster.resource_for(entry.api_version, meta.kind)
            except ClusterError:
                continue  # the kind is gone (its CRD was deleted): so are its objects
            ref = Ref(resource, meta.namespace if resource.namespaced else "", meta.name)
            live_obj = await cluster.get(ref)
            if live_obj is not None and ours(live_obj):
                cluster_refs.append(ref)
        except (ClusterError, BusError) as e:
            failures.append(f"{meta.describe()} prune failed: {e}")
    if failures:
        raise Generic("\n".join(failures), Reason.PRUNE_FAILED)
    # Objects first, then what holds or defines them (CRDs, Namespaces, ClusterRoles),
    # so custom resources and namespaced objects are never orphaned mid-way.
    try:
        for batch in (
            [r for r in cluster_refs if r.resource.kind not in DEFINITIONS],
            [r for r in cluster_refs if r.resource.kind in DEFINITIONS],
        ):
            if batch:
                deleted += await cluster.delete_all(batch)
    except ClusterError as e:
        raise Generic(str(e), Reason.PRUNE_FAILED) from None
    return deleted
