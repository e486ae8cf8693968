"""Flux's apply stages and kind order.

kustomize-controller applies in three stages, waiting between them:

1. cluster definitions: CustomResourceDefinitions (`apiextensions.k8s.io`),
   Namespaces (`v1`) and ClusterRoles (`rbac.authorization.k8s.io`);
2. `*Class` kinds (StorageClass, IngressClass, PriorityClass, GatewayClass, …);
3. everything else.

Within a stage objects are sorted as fluxcd/pkg/ssa sorts them: by kind
index (a fixed list first, unknown kinds in the middle, webhooks last), then
group, then kind, then namespace, then name.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import IntEnum
from typing import Any

_ORDER_FIRST = (
    "CustomResourceDefinition",
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Service",
    "LimitRange",
    "PriorityClass",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
)
_ORDER_LAST = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")

# Known kinds get negative indexes (in list order), webhooks positive ones and
# every other kind 0, exactly as ssa's kind2index.
_KIND_INDEX: dict[str, int] = {
    **{kind: i - len(_ORDER_FIRST) for i, kind in enumerate(_ORDER_FIRST)},
    **{kind: 1 + i for i, kind in enumerate(_ORDER_LAST)},
}


class Stage(IntEnum):
    """Apply stage of an object; lower stages are applied (and waited for) first."""

    CLUSTER_DEFINITIONS = 1
    CLASSES = 2
    RESOURCES = 3


def group_of(api_version: str) -> str:
    """Return the API group of an apiVersion (`""` for the core group)."""
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def is_cluster_definition(obj: Mapping[str, Any]) -> bool:
    """Return whether an object is a CRD, a Namespace or a ClusterRole (stage 1)."""
    kind = str(obj.get("kind", "")).lower()
    api_version = str(obj.get("apiVersion", ""))
    return (
        (kind == "customresourcedefinition" and api_version.startswith("apiextensions.k8s.io/"))
        or (kind == "namespace" and api_version == "v1")
        or (kind == "clusterrole" and api_version.startswith("rbac.authorization.k8s.io/"))
    )


def stage_of(obj: Mapping[str, Any]) -> Stage:
    """Return the apply stage of an object."""
    if is_cluster_definition(obj):
        return Stage.CLUSTER_DEFINITIONS
    if str(obj.get("kind", "")).endswith("Class"):
        return Stage.CLASSES
    return Stage.RESOURCES


def kind_index(kind: str) -> int:
    """Return ssa's order index of a kind (lower first; unknown kinds 0)."""
    return _KIND_INDEX.get(kind, 0)


def sort_key(obj: Mapping[str, Any]) -> tuple[int, str, str, str, str]:
    """Return the ssa sort key: kind index, group, kind, namespace, name."""
    kind = str(obj.get("kind", ""))
    meta = obj.get("metadata") or {}
    return (
        kind_index(kind),
        group_of(str(obj.get("apiVersion", ""))),
        kind,
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
    )


def sort_objects(objects: Iterable[Mapping[str, Any]]) -> list[Any]:
    """Return the objects in ssa's apply order (stable, input order irrelevant)."""
    return sorted(objects, key=sort_key)


def apply_stages(objects: Iterable[Mapping[str, Any]]) -> list[tuple[Stage, list[Any]]]:
    """Return the non-empty stages in apply order, each with its objects sorted."""
    buckets: dict[Stage, list[Any]] = {stage: [] for stage in Stage}
    for obj in objects:
        buckets[stage_of(obj)].append(obj)
    return [(stage, sort_objects(objs)) for stage, objs in buckets.items() if objs]


def delete_order(objects: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Return objects in garbage-collection order: the reverse of the apply order."""
    return sorted(objects, key=sort_key, reverse=True)


TOOLKIT_GROUP_SUFFIX = ".toolkit.fluxcd.io"


def is_toolkit_object(obj: Mapping[str, Any]) -> bool:
    """Return whether an object is a Flux toolkit object (kept in the fluxbus store)."""
    return group_of(str(obj.get("apiVersion", ""))).endswith(TOOLKIT_GROUP_SUFFIX)


def partition_toolkit(objects: Iterable[Mapping[str, Any]]) -> tuple[list[Any], list[Any]]:
    """Split rendered objects into (toolkit objects for the store, objects for the cluster)."""
    toolkit: list[Any] = []
    cluster: list[Any] = []
    for obj in objects:
        (toolkit if is_toolkit_object(obj) else cluster).append(obj)
    return toolkit, cluster
