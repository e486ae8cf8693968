"""Inventory ids, their parsing, and which objects garbage collection deletes."""

from __future__ import annotations

import pytest

from fluxbus_kustomize.logic.inventory import (
    InventoryEntry,
    InventoryError,
    ObjMetadata,
    entry_of,
    inventory_of,
    parse_entries,
    plan_prune,
    stale_entries,
)


def obj(api_version: str, kind: str, name: str, namespace: str | None = None) -> dict:
    meta = {"name": name} | ({"namespace": namespace} if namespace else {})
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


@pytest.mark.parametrize(
    ("o", "entry_id", "version"),
    [
        pytest.param(
            obj("v1", "Service", "podinfo", "default"),
            "default_podinfo__Service",
            "v1",
            id="core-group",
        ),
        pytest.param(
            obj("apps/v1", "Deployment", "podinfo", "default"),
            "default_podinfo_apps_Deployment",
            "v1",
            id="namespaced",
        ),
        pytest.param(
            obj("autoscaling/v2", "HorizontalPodAutoscaler", "podinfo", "default"),
            "default_podinfo_autoscaling_HorizontalPodAutoscaler",
            "v2",
            id="version",
        ),
        pytest.param(obj("v1", "Namespace", "apps"), "_apps__Namespace", "v1", id="cluster-scoped"),
        pytest.param(
            obj("rbac.authorization.k8s.io/v1", "ClusterRole", "system:auth"),
            "_system__auth_rbac.authorization.k8s.io_ClusterRole",
            "v1",
            id="colon-in-name",
        ),
    ],
)
def test_entry_ids_follow_flux_format_and_parse_back(o: dict, entry_id: str, version: str) -> None:
    entry = entry_of(o)
    assert (entry.id, entry.v) == (entry_id, version)
    meta = ObjMetadata.parse(entry_id)
    assert meta.id == entry_id
    assert meta.name == o["metadata"]["name"]
    assert meta.namespace == o["metadata"].get("namespace", "")
    assert entry.api_version == o["apiVersion"]


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("", id="empty"),
        pytest.param("a_b", id="two-fields"),
        pytest.param("ns__grp_Kind", id="no-name"),
    ],
)
def test_a_malformed_id_is_rejected(bad: str) -> None:
    with pytest.raises(InventoryError):
        ObjMetadata.parse(bad)


def test_the_inventory_is_sorted_and_deduplicated() -> None:
    objects = [
        obj("apps/v1", "Deployment", "b", "default"),
        obj("v1", "Service", "a", "default"),
        obj("apps/v1", "Deployment", "b", "default"),
    ]
    assert [e.as_dict() for e in inventory_of(objects)] == [
        {"id": "default_a__Service", "v": "v1"},
        {"id": "default_b_apps_Deployment", "v": "v1"},
    ]


def test_objects_that_left_the_inventory_are_stale_whatever_their_version() -> None:
    old = parse_entries(
        [
            {"id": "default_a__Service", "v": "v1"},
            {"id": "default_b_apps_Deployment", "v": "v1"},
            {"id": "_apps__Namespace", "v": "v1"},
            {"id": "default_hpa_autoscaling_HorizontalPodAutoscaler", "v": "v1"},
            {"id": "default_cm__ConfigMap", "v": "v1"},
        ]
    )
    new = [
        InventoryEntry("default_a__Service", "v1"),
        InventoryEntry("default_hpa_autoscaling_HorizontalPodAutoscaler", "v2"),
    ]
    stale = stale_entries(old, new)
    assert [e.id for e in stale] == [
        "default_b_apps_Deployment",
        "default_cm__ConfigMap",
        "_apps__Namespace",
    ], "deletion runs in reverse apply order: the namespace goes last"


def test_nothing_is_stale_when_the_inventory_is_unchanged() -> None:
    entries = [InventoryEntry("default_a__Service", "v1")]
    assert stale_entries(entries, entries) == []


def test_prune_skips_protected_objects_and_objects_already_gone() -> None:
    stale = [
        InventoryEntry("default_a__ConfigMap", "v1"),
        InventoryEntry("default_keep__ConfigMap", "v1"),
        InventoryEntry("default_frozen__ConfigMap", "v1"),
        InventoryEntry("default_gone__ConfigMap", "v1"),
    ]
    live = {
        "default_a__ConfigMap": obj("v1", "ConfigMap", "a", "default"),
        "default_keep__ConfigMap": {
            **obj("v1", "ConfigMap", "keep", "default"),
            "metadata": {
                "name": "keep",
                "annotations": {"kustomize.toolkit.fluxcd.io/prune": "disabled"},
            },
        },
        "default_frozen__ConfigMap": {
            **obj("v1", "ConfigMap", "frozen", "default"),
            "metadata": {
                "name": "frozen",
                "labels": {"kustomize.toolkit.fluxcd.io/reconcile": "disabled"},
            },
        },
        "default_gone__ConfigMap": None,
    }
    plan = plan_prune(stale, live)
    assert [e.id for e in plan.delete] == ["default_a__ConfigMap"]
    assert [e.id for e in plan.skipped] == ["default_keep__ConfigMap", "default_frozen__ConfigMap"]
    assert [e.id for e in plan.gone] == ["default_gone__ConfigMap"]
