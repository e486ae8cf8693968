"""Operating a Kustomization against kubelite: history with each entry's output
in the object store (bounded), rollback to an entry (held through new
revisions), report-only drift, CreateNamespace, and remote clusters through
`spec.kubeConfig.secretRef` (a second kubelite)."""

from __future__ import annotations

import asyncio
import base64
import json
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

from fluxbus_common import keys, subjects
from fluxbus_common.bus import Bus
from fluxbus_common.testing.plugin import wait_for
from fluxbus_kustomize.settings import KustomizeSettings


def app_repo(image: str, *, with_config: bool = True) -> dict[str, str]:
    docs: list[dict[str, Any]] = [namespace("apps"), deployment("web", "apps", image)]
    if with_config:
        docs.append(configmap("web-config", "apps", color="blue"))
    return {"app.yaml": manifests(*docs)}


def image_of(env: Any) -> str:
    web = env.get("deployment", "web", "-n", "apps")
    return str(web["spec"]["template"]["spec"]["containers"][0]["image"])


async def annotate(bus: Bus, key: str, **annotations: str | None) -> None:
    """Set (or, with None, remove) annotations on a stored object."""
    stored = await bus.get_object(key)
    assert stored is not None
    doc = json.loads(json.dumps(stored.value))
    current = doc["metadata"].setdefault("annotations", {})
    for name, value in annotations.items():
        if value is None:
            current.pop(name, None)
        else:
            current[name] = value
    await bus.update_object(key, doc, stored.revision)


def output_name(digest: str, name: str = "app") -> str:
    return subjects.history_output_name("default", name, digest)


async def test_history_keeps_each_output_compressed_and_drops_those_past_the_limit(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    settings = KustomizeSettings(dependency_requeue=0.5, history_limit=2)
    async with running(bus, kubelite, tmp_path / "env", settings=settings) as env:
        key = await env.apply(kustomization("app"))
        revisions = []
        for image in ("nginx:1.25", "nginx:1.26", "nginx:1.27"):
            revisions.append(await env.publish(app_repo(image)))
            status = await env.ready(key, revisions[-1])
        history = status["history"]
        assert [h["metadata"]["revision"] for h in history] == revisions[:0:-1]
        assert all(h["lastReconciledStatus"] == "ReconciliationSucceeded" for h in history)
        for entry in history:
            assert await bus.artifact_size(output_name(entry["digest"])) is not None
        kept = {output_name(h["digest"]) for h in history}
        stored = await bus.list_artifacts("kustomization/default/app/history/")
        assert set(stored) == kept  # the oldest entry's output left with it


async def test_history_lists_what_an_apply_pruned(bus: Bus, kubelite: Any, tmp_path: Path):
    async with running(bus, kubelite, tmp_path / "env") as env:
        key = await env.apply(kustomization("app"))
        await env.ready(key, await env.publish(app_repo("nginx:1.25")))
        rev = await env.publish(app_repo("nginx:1.25", with_config=False))
        status = await env.ready(key, rev)
        assert status["history"][0]["metadata"]["pruned"] == "ConfigMap/apps/web-config"


async def test_rollback_applies_the_old_output_holds_and_returns_to_git_when_released(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path / "env") as env:
        key = await env.apply(kustomization("app"))
        old = await env.publish(app_repo("nginx:1.25"))
        status = await env.ready(key, old)
        old_digest = status["history"][0]["digest"]
        await env.ready(key, await env.publish(app_repo("nginx:1.26", with_config=False)))
        assert image_of(env) == "nginx:1.26"

        await annotate(bus, key, **{keys.ROLLBACK_ANNOTATION: old_digest})
        status = await env.reconciled(key)
        assert condition(status)["status"] == "True", condition(status)
        assert status["lastAppliedRevision"] == old
        assert image_of(env) == "nginx:1.25"
        assert env.get("configmap", "web-config", "-n", "apps") is not None

        newer = await env.publish(app_repo("nginx:1.27"))
        status = await env.reconciled(key)
        assert status["lastAppliedRevision"] == old  # held while the annotation is there
        assert image_of(env) == "nginx:1.25"

        await annotate(bus, key, **{keys.ROLLBACK_ANNOTATION: None})
        await env.reconciled(key)
        await env.ready(key, newer)
        assert image_of(env) == "nginx:1.27"


async def test_rollback_refuses_an_entry_whose_output_is_gone(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path / "env") as env:
        key = await env.apply(kustomization("app"))
        status = await env.ready(key, await env.publish(app_repo("nginx:1.25")))
        digest = status["history"][0]["digest"]
        await env.ready(key, await env.publish(app_repo("nginx:1.26")))
        await bus.delete_artifact(output_name(digest))
        await annotate(bus, key, **{keys.ROLLBACK_ANNOTATION: digest})
        await env.reconciled(key)
        status = await env.failing(key, "RollbackFailed")
        assert "no longer stored" in condition(status)["message"]
        assert image_of(env) == "nginx:1.26"


async def test_report_only_drift_leaves_a_hand_edit_in_place_and_reports_it(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path / "env") as env:
        doc = kustomization("app")
        doc["metadata"]["annotations"] = {keys.DRIFT_ANNOTATION: keys.DRIFT_REPORT}
        key = await env.apply(doc)
        status = await env.ready(key, await env.publish(app_repo("nginx:1.25")))
        assert condition(status, "Drifted")["status"] == "False"

        scaled = env.kube.kubectl("scale", "deployment/web", "-n", "apps", "--replicas=5")
        assert scaled.returncode == 0, scaled.stderr
        status = await env.reconciled(key)
        drifted = condition(status, "Drifted")
        assert drifted["status"] == "True" and drifted["reason"] == "DriftDetected"
        assert "Deployment/apps/web (spec.replicas)" in drifted["message"]
        assert condition(status)["status"] == "True"
        assert env.get("deployment", "web", "-n", "apps")["spec"]["replicas"] == 5
        warnings = [e for e in await env.events(key) if e.reason == "DriftDetected"]
        assert len(warnings) == 1 and warnings[0].severity == "error"

        await env.reconciled(key)  # the same drift is not announced twice
        assert len([e for e in await env.events(key) if e.reason == "DriftDetected"]) == 1

        rev = await env.publish(app_repo("nginx:1.26"))
        status = await env.ready(key, rev)  # a new revision is still applied
        assert image_of(env) == "nginx:1.26"
        assert condition(status, "Drifted")["status"] == "False"


async def test_create_namespace_creates_the_target_namespace_and_never_prunes_it(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path / "env") as env:
        doc = kustomization("app", targetNamespace="team-a")
        doc["metadata"]["annotations"] = {keys.CREATE_NAMESPACE_ANNOTATION: "true"}
        key = await env.apply(doc)
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}
        status = await env.ready(key, await env.publish({"a.yaml": manifests(cm)}))
        ns = env.get("namespace", "team-a")
        assert ns is not None
        assert ns["metadata"]["labels"][keys.CREATED_BY_LABEL] == "create-namespace"
        assert ns["metadata"]["labels"][keys.KUSTOMIZE_NAME_LABEL] == "app"
        assert [e["id"] for e in status["inventory"]["entries"]] == ["team-a_c__ConfigMap"]
        assert env.get("configmap", "c", "-n", "team-a") is not None

        other = {**cm, "metadata": {"name": "d"}}
        await env.ready(key, await env.publish({"a.yaml": manifests(other)}))
        assert env.get("configmap", "c", "-n", "team-a") is None
        assert env.get("namespace", "team-a") is not None


async def test_remote_cluster_gets_the_apply_and_the_prune_through_a_pooled_connection(
    bus: Bus, kubelite: Any, kubelite_factory: Any, tmp_path: Path
):
    remote = kubelite_factory()
    kubeconfig = await asyncio.to_thread(Path(remote.kubeconfig).read_bytes)
    await bus.put_secret(
        "default",
        "remote-kubeconfig",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "remote-kubeconfig", "namespace": "default"},
            "data": {"value": base64.b64encode(kubeconfig).decode()},
        },
    )
    async with running(bus, kubelite, tmp_path / "env") as env:
        spec = {"kubeConfig": {"secretRef": {"name": "remote-kubeconfig"}}}
        first = await env.apply(kustomization("app", **spec))
        second = await env.apply(kustomization("other", path="./other", **spec))
        rev = await env.publish(
            {**app_repo("nginx:1.25"), "other/o.yaml": manifests(configmap("o", "default"))}
        )
        await env.ready(first, rev)
        await env.ready(second, rev)
        assert env.get("deployment", "web", "-n", "apps") is None  # not the local cluster
        found = remote.kubectl("get", "deployment", "web", "-n", "apps", "-o", "json")
        assert found.returncode == 0, found.stderr
        assert len(env.reconciler.clusters) == 1  # both share one connection

        rev = await env.publish(
            {**app_repo("nginx:1.25", with_config=False), "other/o.yaml": manifests()}
        )
        await env.ready(first, rev)

        async def pruned() -> bool:
            r = await remote.akubectl("get", "configmap", "web-config", "-n", "apps")
            return r.returncode != 0 and "NotFound" in r.stderr

        await wait_for(pruned, timeout=10, message="web-config pruned in the remote cluster")


async def test_a_missing_kubeconfig_secret_fails_naming_it(bus: Bus, kubelite: Any, tmp_path: Path):
    async with running(bus, kubelite, tmp_path / "env") as env:
        spec = {"kubeConfig": {"secretRef": {"name": "nowhere"}}}
        key = await env.apply(kustomization("app", **spec))
        await env.publish(app_repo("nginx:1.25"))
        status = await env.failing(key, "ReconciliationFailed")
        assert "Secret 'default/nowhere' not found" in condition(status)["message"]
