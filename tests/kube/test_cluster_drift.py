"""fluxbus_kube against a real API server (kubelite): a service that applied
objects finds their drift with a server-side dry-run preview and corrects it
with the same staged apply, as any field manager it names (the kustomize
service applies as `fluxbus`; the helm service as the manager its releases
were installed with), leaving ignored fields as they are."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from fluxbus_kube import Cluster
from fluxbus_kube.logic.diff import object_diff
from fluxbus_kubelite.testing import KubeliteHandle


def configmap(**data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "default"},
        "data": data,
    }


async def kubectl(kube: KubeliteHandle, *args: str) -> str:
    done = await asyncio.to_thread(kube.kubectl, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def drifted(cluster: Cluster, objects: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    """Subject -> changed fields of every object whose live state differs."""
    previews = await cluster.preview_all(objects, **kw)
    diffs = [object_diff(p.subject, p.live, p.merged) for p in previews]
    return {d.subject: d.fields for d in diffs if d is not None}


@pytest.fixture
async def helm_cluster(kubelite: KubeliteHandle) -> AsyncIterator[Cluster]:
    cluster = await Cluster.connect(kubelite.kubeconfig, field_manager="helm-controller")
    try:
        yield cluster
    finally:
        await cluster.close()


async def test_objects_are_applied_as_the_field_manager_the_cluster_names(
    kubelite: KubeliteHandle, helm_cluster: Cluster
):
    (change,) = await helm_cluster.apply_all([configmap(a="1")])
    assert (change.subject, change.action) == ("ConfigMap/default/settings", "created")
    managed = (change.object or {})["metadata"]["managedFields"]
    assert {(m["manager"], m["operation"]) for m in managed} == {("helm-controller", "Apply")}


async def test_drift_found_by_a_preview_is_corrected_by_the_same_apply(
    kubelite: KubeliteHandle, helm_cluster: Cluster
):
    desired = [configmap(a="1", b="2")]
    await helm_cluster.apply_all(desired)
    assert await drifted(helm_cluster, desired) == {}

    await kubectl(
        kubelite,
        "patch",
        "configmap",
        "settings",
        "--type=merge",
        "-p",
        '{"data":{"a":"x","c":"3"}}',
    )

    assert await drifted(helm_cluster, desired) == {"ConfigMap/default/settings": ("data.a",)}
    (change,) = await helm_cluster.apply_all(desired)
    assert change.action == "configured"
    # kubectl's fields were taken over: the key it added goes with the correction
    assert (change.object or {})["data"] == {"a": "1", "b": "2"}
    assert await drifted(helm_cluster, desired) == {}


async def test_an_ignored_field_keeps_its_drift(kubelite: KubeliteHandle, helm_cluster: Cluster):
    desired = [configmap(a="1", b="2")]
    ignored = {("v1", "ConfigMap", "default", "settings"): ["/data/b"]}
    await helm_cluster.apply_all(desired, ignored=ignored)
    await kubectl(
        kubelite,
        "patch",
        "configmap",
        "settings",
        "--type=merge",
        "-p",
        '{"data":{"a":"x","b":"y"}}',
    )

    assert await drifted(helm_cluster, desired, ignored=ignored) == {
        "ConfigMap/default/settings": ("data.a",)
    }
    (change,) = await helm_cluster.apply_all(desired, ignored=ignored)
    assert (change.object or {})["data"] == {"a": "1", "b": "y"}
