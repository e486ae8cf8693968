"""Dependencies, health checks, substitution, toolkit objects in the store and
deletion policies."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from reconcile_helpers import (
    condition,
    configmap,
    deployment,
    kustomization,
    manifests,
    namespace,
    running,
)

from fluxbus_common import keys, subjects
from fluxbus_common.bus import Bus
from fluxbus_common.testing.plugin import wait_for
from fluxbus_kustomize.settings import KustomizeSettings

FAST = KustomizeSettings(dependency_requeue=0.5, min_timeout=1.0)


async def test_depends_on_chain_becomes_ready_in_order(bus: Bus, kubelite: Any, tmp_path: Path):
    files = {f"{n}/cm.yaml": manifests(configmap(n, "default", step=n)) for n in ("a", "b", "c")}
    # a long requeue: only the dependency watch can make the chain progress quickly
    slow = KustomizeSettings(dependency_requeue=120.0)
    async with running(bus, kubelite, tmp_path / "env", settings=slow) as env:
        rev = await env.publish(files)
        c = await env.apply(
            kustomization("c", path="./c", dependsOn=[{"name": "b"}], interval="10m")
        )
        status = await env.failing(c, "DependencyNotReady")
        assert "dependency 'default/b'" in condition(status)["message"]
        b = await env.apply(
            kustomization("b", path="./b", dependsOn=[{"name": "a"}], interval="10m")
        )
        await env.failing(b, "DependencyNotReady")
        assert env.get("configmap", "c") is None and env.get("configmap", "b") is None
        a = await env.apply(kustomization("a", path="./a", interval="10m"))
        for key in (a, b, c):
            await env.ready(key, rev, timeout=10)
        stamps = [condition(await env.status(k))["lastTransitionTime"] for k in (a, b, c)]
        assert stamps == sorted(stamps)
        assert env.get("configmap", "c")["data"] == {"step": "c"}


async def test_wait_reports_healthy_deployments(bus: Bus, kubelite: Any, tmp_path: Path):
    async with running(bus, kubelite, tmp_path / "env", settings=FAST) as env:
        rev = await env.publish({"a.yaml": manifests(namespace("apps"), deployment("web", "apps"))})
        key = await env.apply(kustomization("app", wait=True, timeout="20s"))
        status = await env.ready(key, rev)
        healthy = condition(status, "Healthy")
        assert healthy["status"] == "True"
        assert healthy["message"].startswith("Health check passed in ")
        web = env.get("deployment", "web", "-n", "apps")
        assert any(c["type"] == "Available" for c in web["status"]["conditions"])


async def test_health_check_times_out_naming_the_broken_deployment(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    repo = {
        "a.yaml": manifests(
            namespace("apps"),
            deployment("web", "apps", "nginx:broken"),
            deployment("ok", "apps", "nginx:1.25"),
        )
    }
    async with running(bus, kubelite, tmp_path / "env", settings=FAST) as env:
        rev = await env.publish(repo)
        key = await env.apply(kustomization("app", wait=True, timeout="3s", retryInterval="1s"))
        status = await env.failing(key, "HealthCheckFailed", timeout=20)
        message = condition(status)["message"]
        assert "Deployment/apps/web" in message
        assert "Deployment/apps/ok" not in message
        assert condition(status, "Healthy")["status"] == "False"
        assert status["lastAttemptedRevision"] == rev
        assert "lastAppliedRevision" not in status  # not applied successfully yet


async def test_health_checks_list_only_the_named_objects(bus: Bus, kubelite: Any, tmp_path: Path):
    repo = {
        "a.yaml": manifests(
            namespace("apps"),
            deployment("web", "apps", "nginx:1.25"),
            deployment("worker", "apps", "nginx:broken"),
        )
    }
    checks = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "apps"}]
    async with running(bus, kubelite, tmp_path / "env", settings=FAST) as env:
        rev = await env.publish(repo)
        key = await env.apply(
            kustomization("app", healthChecks=checks, timeout="5s", retryInterval="1s")
        )
        status = await env.ready(key, rev)
        assert condition(status, "Healthy")["status"] == "True"


async def test_health_check_exprs_decide_custom_health(bus: Bus, kubelite: Any, tmp_path: Path):
    repo = {"a.yaml": manifests(namespace("apps"), deployment("web", "apps", "nginx:broken"))}
    exprs = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "current": "metadata.name == 'web'",
        }
    ]
    async with running(bus, kubelite, tmp_path / "env", settings=FAST) as env:
        rev = await env.publish(repo)
        key = await env.apply(
            kustomization(
                "app", wait=True, healthCheckExprs=exprs, timeout="5s", retryInterval="1s"
            )
        )
        await env.ready(key, rev)


async def test_new_revision_cancels_a_health_check_in_flight(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path / "env", settings=FAST) as env:
        await env.publish(
            {"a.yaml": manifests(namespace("apps"), deployment("web", "apps", "nginx:broken"))}
        )
        key = await env.apply(kustomization("app", wait=True, timeout="60s"))
        await wait_for(
            lambda: env.get("deployment", "web", "-n", "apps") is not None, message="applied"
        )
        started = time.monotonic()
        rev2 = await env.publish(
            {"a.yaml": manifests(namespace("apps"), deployment("web", "apps", "nginx:1.26"))}
        )
        await env.ready(key, rev2, timeout=15)
        assert time.monotonic() - started < 15  # far from the 60 s timeout
        events = await env.events(key)
        assert any(e.reason == "HealthCheckCanceled" for e in events)


async def test_post_build_substitution_from_configmaps_and_secrets(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    cm = configmap("app", "default", greeting="${greeting}", target="${cluster}", team="${team}")
    async with running(bus, kubelite, tmp_path / "env", settings=FAST) as env:
        await bus.put_configmap(
            "default",
            "vars",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "vars", "namespace": "default"},
                "data": {"greeting": "hello", "cluster": "from-cm"},
            },
        )
        await bus.put_secret(
            "default",
            "secret-vars",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "secret-vars", "namespace": "default"},
                "data": {"cluster": base64.b64encode(b"from-secret").decode()},
            },
        )
        rev = await env.publish({"a.yaml": manifests(cm)})
        post_build = {
            "substitute": {"team": "platform"},
            "substituteFrom": [
                {"kind": "ConfigMap", "name": "vars"},
                {"kind": "Secret", "name": "secret-vars"},
                {"kind": "ConfigMap", "name": "absent", "optional": True},
            ],
        }
        key = await env.apply(kustomization("app", postBuild=post_build))
        await env.ready(key, rev)
        assert env.get("configmap", "app")["data"] == {
            "greeting": "hello",
            "target": "from-secret",
            "team": "platform",
        }
        # a new value is new input: rendered again and applied
        await bus.put_configmap(
            "default",
            "vars",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "vars", "namespace": "default"},
                "data": {"greeting": "bonjour", "cluster": "from-cm"},
            },
        )
        await env.reconciled(key)
        assert env.get("configmap", "app")["data"]["greeting"] == "bonjour"


async def test_missing_substitution_source_fails_the_build(bus: Bus, kubelite: Any, tmp_path: Path):
    async with running(bus, kubelite, tmp_path / "env", settings=FAST) as env:
        await env.publish({"a.yaml": manifests(configmap("app", "default", v="${v}"))})
        key = await env.apply(
            kustomization(
                "app", postBuild={"substituteFrom": [{"kind": "ConfigMap", "name": "nope"}]}
            )
        )
        status = await env.failing(key, "BuildFailed")
        assert "ConfigMap/default/nope not found" in condition(status)["message"]


async def test_toolkit_objects_go_into_the_store(bus: Bus, kubelite: Any, tmp_path: Path):
    git = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "child-repo", "namespace": "default"},
        "spec": {"url": "https://git.example.com/child.git", "interval": "5m"},
    }
    child = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "child", "namespace": "default"},
        "spec": {
            "interval": "10m",
            "path": "./",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "child-repo"},
        },
    }
    async with running(bus, kubelite, tmp_path / "env", settings=FAST) as env:
        rev = await env.publish({"flux.yaml": manifests(git, child, configmap("plain", "default"))})
        key = await env.apply(kustomization("bootstrap"))
        status = await env.ready(key, rev)
        ids = {e["id"] for e in status["inventory"]["entries"]}
        assert ids == {
            "default_child-repo_source.toolkit.fluxcd.io_GitRepository",
            "default_child_kustomize.toolkit.fluxcd.io_Kustomization",
            "default_plain__ConfigMap",
        }
        stored = await bus.get_object(subjects.object_key("GitRepository", "default", "child-repo"))
        assert stored is not None
        labels = stored.value["metadata"]["labels"]
        assert labels["kustomize.toolkit.fluxcd.io/name"] == "bootstrap"
        # nothing of it reached the cluster (which does not even know the kind)
        assert kubelite.kubectl("get", "gitrepositories.source.toolkit.fluxcd.io").returncode != 0
        assert env.get("configmap", "plain") is not None
        # removing them from Git prunes them from the store
        rev2 = await env.publish({"flux.yaml": manifests(configmap("plain", "default"))})
        await env.ready(key, rev2)
        await wait_for(
            lambda: _absent(bus, subjects.object_key("GitRepository", "default", "child-repo")),
            message="GitRepository pruned from the store",
        )


async def test_a_suspended_child_stays_suspended_when_its_parent_applies_again(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    """`fluxbus suspend` (or a held rollback) on a child the parent stores is kept,
    as Flux's server-side apply keeps fields the parent never applied; what Git
    changes is still applied."""

    def child(interval: str) -> dict[str, Any]:
        return {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "child-repo", "namespace": "default"},
            "spec": {"url": "https://git.example.com/child.git", "interval": interval},
        }

    child_key = subjects.object_key("GitRepository", "default", "child-repo")
    async with running(bus, kubelite, tmp_path / "env", settings=FAST) as env:
        rev = await env.publish({"flux.yaml": manifests(child("5m"))})
        key = await env.apply(kustomization("bootstrap"))
        await env.ready(key, rev)
        stored = await bus.get_object(child_key)
        assert stored is not None
        suspended = json.loads(json.dumps(stored.value))
        suspended["spec"]["suspend"] = True
        suspended["metadata"].setdefault("annotations", {})[keys.ROLLBACK_ANNOTATION] = "1"
        await bus.update_object(child_key, suspended, stored.revision)

        rev2 = await env.publish({"flux.yaml": manifests(child("7m"))})
        await env.ready(key, rev2)

        after = await bus.get_object(child_key)
        assert after is not None
        assert after.value["spec"]["interval"] == "7m"
        assert after.value["spec"]["suspend"] is True
        assert after.value["metadata"]["annotations"][keys.ROLLBACK_ANNOTATION] == "1"


async def _absent(bus: Bus, key: str) -> bool:
    return await bus.get_object(key) is None


@pytest.mark.parametrize(
    ("policy", "prune", "deleted"),
    [
        pytest.param(None, True, True, id="mirrorprune-with-prune"),
        pytest.param(None, False, False, id="mirrorprune-without-prune"),
        pytest.param("Delete", False, True, id="delete"),
        pytest.param("WaitForTermination", False, True, id="wait-for-termination"),
        pytest.param("Orphan", True, False, id="orphan"),
    ],
)
async def test_deletion_policy(
    bus: Bus, kubelite: Any, tmp_path: Path, policy: str | None, prune: bool, deleted: bool
):
    spec: dict[str, Any] = {"prune": prune}
    if policy:
        spec["deletionPolicy"] = policy
    async with running(bus, kubelite, tmp_path / "env", settings=FAST) as env:
        rev = await env.publish({"a.yaml": manifests(namespace("apps"), deployment("web", "apps"))})
        key = await env.apply(kustomization("app", **spec))
        await env.ready(key, rev)
        await bus.request_delete(key)
        await wait_for(lambda: _absent(bus, key), message="Kustomization finalized")
        web = env.get("deployment", "web", "-n", "apps")
        if deleted:
            if policy == "WaitForTermination":
                assert web is None  # gone before the finalizer was released
            else:
                await wait_for(
                    lambda: env.get("deployment", "web", "-n", "apps") is None, message="deleted"
                )
        else:
            assert web is not None


async def test_waits_for_its_source_and_starts_as_soon_as_the_artifact_exists(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path / "env", settings=FAST) as env:
        key = await env.apply(kustomization("app", source="late", interval="10m"))
        status = await env.failing(key, "ArtifactFailed")
        assert "Source 'GitRepository/default/late' not found" in condition(status)["message"]
        rev = await env.publish({"a.yaml": manifests(configmap("a", "default"))}, name="late")
        await env.ready(key, rev, timeout=10)  # not the 10 min retry: the status watch
        assert env.get("configmap", "a") is not None


async def test_depends_on_ready_expr_decides_readiness(bus: Bus, kubelite: Any, tmp_path: Path):
    files = {f"{n}/cm.yaml": manifests(configmap(n, "default")) for n in ("base", "app")}
    never = "dep.metadata.name == 'someone-else'"
    ready = "dep.status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')"
    async with running(bus, kubelite, tmp_path / "env", settings=FAST) as env:
        rev = await env.publish(files)
        base = await env.apply(kustomization("base", path="./base"))
        await env.ready(base, rev)
        app = await env.apply(
            kustomization("app", path="./app", dependsOn=[{"name": "base", "readyExpr": never}])
        )
        status = await env.failing(app, "DependencyNotReady")
        assert "readyExpr" in condition(status)["message"]
        await env.apply(
            kustomization("app", path="./app", dependsOn=[{"name": "base", "readyExpr": ready}])
        )
        await env.ready(app, rev)


async def test_wait_covers_toolkit_objects_in_the_store(bus: Bus, kubelite: Any, tmp_path: Path):
    child = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "child", "namespace": "default"},
        "spec": {
            "interval": "10m",
            "path": "./",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "child-src"},
        },
    }
    async with running(bus, kubelite, tmp_path / "env", settings=FAST) as env:
        parent_rev = await env.publish({"flux.yaml": manifests(child)}, name="parent-src")
        parent = await env.apply(
            kustomization(
                "parent", source="parent-src", wait=True, timeout="30s", retryInterval="1s"
            )
        )
        # the child has no artifact yet: the parent cannot be healthy
        child_key = subjects.object_key("Kustomization", "default", "child")
        await wait_for(lambda: _stored(bus, child_key), message="child stored")
        assert condition(await env.status(parent)).get("status") != "True"
        child_rev = await env.publish(
            {"cm.yaml": manifests(configmap("from-child", "default"))}, name="child-src"
        )
        await env.ready(child_key, child_rev)
        status = await env.ready(parent, parent_rev, timeout=20)
        assert condition(status, "Healthy")["status"] == "True"
        assert env.get("configmap", "from-child") is not None


async def _stored(bus: Bus, key: str) -> bool:
    return await bus.get_object(key) is not None
