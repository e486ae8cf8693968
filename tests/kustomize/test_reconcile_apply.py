"""The Kustomization reconciler applying to kubelite: sync, drift correction,
new revisions, pruning, no-op stability, overlays and staged CRDs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconcile_helpers import (
    condition,
    configmap,
    deployment,
    kustomization,
    manifests,
    namespace,
    running,
)

from fluxbus_common.bus import Bus
from fluxbus_common.testing.plugin import wait_for


def app_repo(image: str = "nginx:1.25", *, with_config: bool = True) -> dict[str, str]:
    docs: list[dict[str, Any]] = [namespace("apps"), deployment("web", "apps", image)]
    if with_config:
        docs.append(configmap("web-config", "apps", color="blue"))
    return {"app.yaml": manifests(*docs)}


async def test_synced_objects_drift_and_self_heal(bus: Bus, kubelite: Any, tmp_path: Path):
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev = await env.publish(app_repo())
        key = await env.apply(kustomization("app"))
        status = await env.ready(key, rev)
        assert condition(status)["reason"] == "ReconciliationSucceeded"
        assert condition(status)["message"] == f"Applied revision: {rev}"
        assert status["lastAttemptedRevision"] == rev
        ids = [e["id"] for e in status["inventory"]["entries"]]
        assert ids == ["_apps__Namespace", "apps_web-config__ConfigMap", "apps_web_apps_Deployment"]
        web = env.get("deployment", "web", "-n", "apps")
        assert web is not None
        labels = web["metadata"]["labels"]
        assert labels["kustomize.toolkit.fluxcd.io/name"] == "app"
        assert labels["kustomize.toolkit.fluxcd.io/namespace"] == "default"

        scaled = env.kube.kubectl("scale", "deployment/web", "-n", "apps", "--replicas=5")
        assert scaled.returncode == 0, scaled.stderr
        assert env.get("deployment", "web", "-n", "apps")["spec"]["replicas"] == 5

        await env.reconciled(key)
        assert env.get("deployment", "web", "-n", "apps")["spec"]["replicas"] == 1
        events = await env.events(key)
        assert any(e.message == "Deployment/apps/web configured" for e in events), [
            e.message for e in events
        ]


async def test_second_reconcile_writes_nothing(bus: Bus, kubelite: Any, tmp_path: Path):
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev = await env.publish(app_repo())
        # wait: the Deployment's simulated rollout (a status write) is over once Ready
        key = await env.apply(kustomization("app", wait=True))
        await env.ready(key, rev)
        before = {
            kind: env.get(kind, name, "-n", "apps")["metadata"]["resourceVersion"]
            for kind, name in (("deployment", "web"), ("configmap", "web-config"))
        }
        events_before = len(await env.events(key))
        renders = env.reconciler.builder.renders
        await env.reconciled(key)
        await env.reconciled(key)
        after = {
            kind: env.get(kind, name, "-n", "apps")["metadata"]["resourceVersion"]
            for kind, name in (("deployment", "web"), ("configmap", "web-config"))
        }
        assert after == before
        assert len(await env.events(key)) == events_before  # nothing changed: no event
        assert env.reconciler.builder.renders == renders  # same inputs: not rendered again


async def test_new_revision_updates_the_image(bus: Bus, kubelite: Any, tmp_path: Path):
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev1 = await env.publish(app_repo("nginx:1.25"))
        key = await env.apply(kustomization("app"))
        await env.ready(key, rev1)
        rev2 = await env.publish(app_repo("nginx:1.26"))
        await env.ready(key, rev2)  # the new artifact triggers at once (interval is 1m)
        web = env.get("deployment", "web", "-n", "apps")
        assert web["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
        assert env.get("configmap", "web-config", "-n", "apps") is not None
        events = await env.events(key)
        assert events[-1].message == "Deployment/apps/web configured"
        assert events[-1].metadata["kustomize.toolkit.fluxcd.io/revision"] == rev2


async def test_object_removed_from_git_is_pruned(bus: Bus, kubelite: Any, tmp_path: Path):
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev1 = await env.publish(app_repo(with_config=True))
        key = await env.apply(kustomization("app"))
        await env.ready(key, rev1)
        assert env.get("configmap", "web-config", "-n", "apps") is not None
        rev2 = await env.publish(app_repo(with_config=False))
        status = await env.ready(key, rev2)
        assert env.get("configmap", "web-config", "-n", "apps") is None
        assert env.get("deployment", "web", "-n", "apps") is not None
        ids = [e["id"] for e in status["inventory"]["entries"]]
        assert "apps_web-config__ConfigMap" not in ids
        events = await env.events(key)
        assert "ConfigMap/apps/web-config deleted" in events[-1].message


async def test_base_and_overlays(bus: Bus, kubelite: Any, tmp_path: Path):
    files = {
        "base/kustomization.yaml": """
            resources: [deploy.yaml]
        """,
        "base/deploy.yaml": manifests(deployment("web", "default")),
        "overlays/staging/kustomization.yaml": """
            namespace: staging
            namePrefix: staging-
            resources: [../../base, ns.yaml]
            images:
              - name: nginx
                newTag: "1.27"
        """,
        "overlays/staging/ns.yaml": manifests(namespace("staging")),
        "overlays/prod/kustomization.yaml": """
            namespace: prod
            resources: [../../base, ns.yaml]
            replicas:
              - name: web
                count: 3
        """,
        "overlays/prod/ns.yaml": manifests(namespace("prod")),
    }
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev = await env.publish(files)
        staging = await env.apply(kustomization("staging", path="./overlays/staging"))
        prod = await env.apply(kustomization("prod", path="./overlays/prod"))
        await env.ready(staging, rev)
        await env.ready(prod, rev)
        s = env.get("deployment", "staging-web", "-n", "staging")
        p = env.get("deployment", "web", "-n", "prod")
        assert s["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
        assert p["spec"]["replicas"] == 3
        assert p["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] == "prod"


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "names": {
            "kind": "Widget",
            "plural": "widgets",
            "singular": "widget",
            "listKind": "WidgetList",
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                        },
                    }
                },
            }
        ],
    },
}


async def test_crd_and_its_custom_resource_in_one_build(bus: Bus, kubelite: Any, tmp_path: Path):
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "things"},
        "spec": {"size": 3},
    }
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev = await env.publish({"all.yaml": manifests(widget, namespace("things"), CRD)})
        key = await env.apply(kustomization("crds"))
        status = await env.ready(key, rev)
        assert env.get("widget", "w1", "-n", "things")["spec"] == {"size": 3}
        ids = {e["id"] for e in status["inventory"]["entries"]}
        assert ids == {
            "_widgets.example.com_apiextensions.k8s.io_CustomResourceDefinition",
            "_things__Namespace",
            "things_w1_example.com_Widget",
        }
        # all of it leaves Git: the custom resource, its CRD and the namespace are pruned
        rev2 = await env.publish({"other.yaml": manifests(configmap("other", "default"))})
        await env.ready(key, rev2)
        assert env.get("crd", "widgets.example.com") is None
        await wait_for(lambda: env.get("namespace", "things") is None, message="namespace gone")


async def test_invalid_object_fails_dry_run_and_applies_nothing(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    bad = configmap("Bad_Name", "default", a="b")
    async with running(bus, kubelite, tmp_path / "env") as env:
        await env.publish({"cm.yaml": manifests(configmap("good", "default", a="b"), bad)})
        key = await env.apply(kustomization("bad"))
        status = await env.failing(key, "ReconciliationFailed")
        assert "ConfigMap/default/Bad_Name" in condition(status)["message"]
        assert env.get("configmap", "good") is None  # the stage was not applied
        await wait_for(lambda: True)
