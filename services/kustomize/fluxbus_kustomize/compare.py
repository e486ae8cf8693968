"""Comparing what a Kustomization would apply with the cluster: one
`fluxbus_kube.logic.diff.ObjectDiff` per object that would be created, changed or pruned
(`fluxbus diff`, and the drift report of `fluxbus.io/drift: report`).

Toolkit kinds go to the fluxbus store, not the cluster: they are not compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fluxbus_common.api.kustomize import DriftIgnoreRule
from fluxbus_kube.errors import ClusterError
from fluxbus_kube.logic.diff import ObjectDiff, object_diff
from fluxbus_kube.logic.drift import ignored_paths
from fluxbus_kube.resources import Preview, Ref
from fluxbus_kustomize.logic.inventory import InventoryEntry
from fluxbus_kustomize.ports import ClusterPort
from fluxbus_kustomize.prune import owned_by
from fluxbus_kustomize.store_apply import store_info


def in_cluster(objects: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Return the objects that go to the cluster (not toolkit kinds for the store)."""
    return [o for o in objects if store_info(str(o.get("apiVersion")), str(o.get("kind"))) is None]


async def previews(
    cluster: ClusterPort,
    objects: Sequence[Mapping[str, Any]],
    *,
    force: bool,
    rules: Sequence[DriftIgnoreRule],
) -> list[Preview]:
    """Dry-run the objects that go to the cluster. Raises ClusterError."""
    targets = in_cluster(objects)
    return await cluster.preview_all(targets, force=force, ignored=ignored_paths(targets, rules))


async def compare(
    cluster: ClusterPort,
    objects: Sequence[Mapping[str, Any]],
    *,
    force: bool = False,
    rules: Sequence[DriftIgnoreRule] = (),
    stale: Sequence[InventoryEntry] = (),
    owner: tuple[str, str] | None = None,
) -> list[ObjectDiff]:
    """Return the differences applying `objects` (owner labels on) would make, and
    the stale inventory entries of `owner` (name, namespace) a prune would delete.

    Raises ClusterError when a dry-run or a read fails.
    """
    diffs = [
        d
        for p in await previews(cluster, objects, force=force, rules=rules)
        if (d := object_diff(p.subject, p.live, p.merged)) is not None
    ]
    if owner is None:
        return diffs
    for entry in stale:
        meta = entry.meta
        if store_info(entry.api_version, meta.kind) is not None:
            continue
        try:
            resource = await cluster.resource_for(entry.api_version, meta.kind)
        except ClusterError:
            continue  # the kind is gone, and its objects with it
        ref = Ref(resource, meta.namespace if resource.namespaced else "", meta.name)
        live = await cluster.get(ref)
        if live is not None and owned_by(live, owner):
            gone = object_diff(ref.describe(), live, None)
            if gone is not None:
                diffs.append(gone)
    return diffs
