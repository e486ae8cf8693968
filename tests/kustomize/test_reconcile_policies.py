"""Safeguards and per-object policies: immutable fields and force, broken
commits, prune protections and the ssa / reconcile annotations."""

from __future__ import annotations

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

from fluxbus_common.api import DriftIgnoreRule
from fluxbus_common.bus import Bus
from fluxbus_kube.logic.drift import ignore_drift


def selector_repo(app_label: str, *, force_annotation: bool = False) -> dict[str, str]:
    annotations = {"kustomize.toolkit.fluxcd.io/force": "enabled"} if force_annotation else None
    web = deployment("web", "apps", labels={"app": app_label}, annotations=annotations)
    return {"app.yaml": manifests(namespace("apps"), web)}


async def test_immutable_selector_change_fails_without_force(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev1 = await env.publish(selector_repo("web"))
        key = await env.apply(kustomization("app"))
        await env.ready(key, rev1)
        uid = env.get("deployment", "web", "-n", "apps")["metadata"]["uid"]
        rev2 = await env.publish(selector_repo("web-v2"))
        status = await env.failing(key, "ReconciliationFailed")
        message = condition(status)["message"]
        assert "Deployment/apps/web" in message
        assert "spec.selector" in message and "immutable" in message
        assert status["lastAppliedRevision"] == rev1
        assert status["lastAttemptedRevision"] == rev2
        live = env.get("deployment", "web", "-n", "apps")
        assert live["metadata"]["uid"] == uid
        assert live["spec"]["selector"] == {"matchLabels": {"app": "web"}}


async def test_immutable_selector_change_recreates_with_spec_force(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev1 = await env.publish(selector_repo("web"))
        key = await env.apply(kustomization("app", force=True))
        await env.ready(key, rev1)
        uid = env.get("deployment", "web", "-n", "apps")["metadata"]["uid"]
        rev2 = await env.publish(selector_repo("web-v2"))
        await env.ready(key, rev2)
        live = env.get("deployment", "web", "-n", "apps")
        assert live["metadata"]["uid"] != uid
        assert live["spec"]["selector"] == {"matchLabels": {"app": "web-v2"}}


async def test_immutable_selector_change_recreates_with_force_annotation(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev1 = await env.publish(selector_repo("web", force_annotation=True))
        key = await env.apply(kustomization("app"))
        await env.ready(key, rev1)
        uid = env.get("deployment", "web", "-n", "apps")["metadata"]["uid"]
        rev2 = await env.publish(selector_repo("web-v2", force_annotation=True))
        await env.ready(key, rev2)
        assert env.get("deployment", "web", "-n", "apps")["metadata"]["uid"] != uid


async def test_broken_commit_keeps_last_applied_state_and_a_fix_recovers(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    good = {"app.yaml": manifests(configmap("a", "default", v="1"), configmap("b", "default"))}
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev1 = await env.publish(good)
        key = await env.apply(kustomization("app"))
        await env.ready(key, rev1)
        rv = env.get("configmap", "a")["metadata"]["resourceVersion"]
        # the broken commit also drops `b`: a failed build must not prune it
        rev2 = await env.publish({"app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: [\n"})
        status = await env.failing(key, "BuildFailed")
        assert "app.yaml" in condition(status)["message"]
        assert status["lastAppliedRevision"] == rev1
        assert status["lastAttemptedRevision"] == rev2
        assert env.get("configmap", "a")["metadata"]["resourceVersion"] == rv
        assert env.get("configmap", "b") is not None
        rev3 = await env.publish({"app.yaml": manifests(configmap("a", "default", v="2"))})
        await env.ready(key, rev3)
        assert env.get("configmap", "a")["data"] == {"v": "2"}
        assert env.get("configmap", "b") is None


async def test_failed_apply_prunes_nothing(bus: Bus, kubelite: Any, tmp_path: Path):
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev1 = await env.publish({"a.yaml": manifests(configmap("a", "default"))})
        key = await env.apply(kustomization("app"))
        await env.ready(key, rev1)
        # `a` leaves Git, and the new object cannot be applied (its namespace is missing)
        await env.publish({"b.yaml": manifests(configmap("b", "missing-ns"))})
        status = await env.failing(key, "ReconciliationFailed")
        assert "ConfigMap/missing-ns/b" in condition(status)["message"]
        assert env.get("configmap", "a") is not None
        assert status["lastAppliedRevision"] == rev1


async def test_prune_disabled_objects_survive_removal_from_git(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    keep = configmap("keep", "default")
    keep["metadata"]["annotations"] = {"kustomize.toolkit.fluxcd.io/prune": "disabled"}
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev1 = await env.publish({"a.yaml": manifests(keep, configmap("drop", "default"))})
        key = await env.apply(kustomization("app"))
        await env.ready(key, rev1)
        rev2 = await env.publish({"a.yaml": manifests(configmap("other", "default"))})
        await env.ready(key, rev2)
        assert env.get("configmap", "keep") is not None
        assert env.get("configmap", "drop") is None
        assert env.get("configmap", "other") is not None


async def test_prune_false_leaves_removed_objects(bus: Bus, kubelite: Any, tmp_path: Path):
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev1 = await env.publish({"a.yaml": manifests(configmap("a", "default"))})
        key = await env.apply(kustomization("app", prune=False))
        await env.ready(key, rev1)
        rev2 = await env.publish({"b.yaml": manifests(configmap("b", "default"))})
        await env.ready(key, rev2)
        assert env.get("configmap", "a") is not None


async def test_ssa_policies_and_reconcile_disabled(bus: Bus, kubelite: Any, tmp_path: Path):
    def annotated(name: str, key: str, value: str, **data: str) -> dict[str, Any]:
        cm = configmap(name, "default", **data)
        cm["metadata"]["annotations"] = {key: value}
        return cm

    async with running(bus, kubelite, tmp_path / "env") as env:
        kubelite.kubectl("create", "configmap", "preset", "--from-literal=v=manual")
        kubelite.kubectl("create", "configmap", "frozen", "--from-literal=v=manual")
        rev = await env.publish(
            {
                "a.yaml": manifests(
                    annotated("preset", "kustomize.toolkit.fluxcd.io/ssa", "IfNotPresent", v="git"),
                    annotated("fresh", "kustomize.toolkit.fluxcd.io/ssa", "IfNotPresent", v="git"),
                    annotated("ignored", "kustomize.toolkit.fluxcd.io/ssa", "Ignore", v="git"),
                    annotated(
                        "frozen", "kustomize.toolkit.fluxcd.io/reconcile", "disabled", v="git"
                    ),
                    annotated("merged", "kustomize.toolkit.fluxcd.io/ssa", "Merge", v="git"),
                )
            }
        )
        key = await env.apply(kustomization("app"))
        await env.ready(key, rev)
        assert env.get("configmap", "preset")["data"] == {"v": "manual"}
        assert env.get("configmap", "fresh")["data"] == {"v": "git"}
        assert env.get("configmap", "ignored") is None
        assert env.get("configmap", "frozen")["data"] == {"v": "manual"}
        assert env.get("configmap", "merged")["data"] == {"v": "git"}


async def test_unsupported_decryption_stalls_instead_of_applying_encrypted_data(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path / "env") as env:
        await env.publish({"a.yaml": manifests(configmap("a", "default"))})
        key = await env.apply(kustomization("app", decryption={"provider": "sops"}))
        status = await env.failing(key, "InvalidSpec")
        assert "spec.decryption" in condition(status)["message"]
        assert condition(status, "Stalled")["status"] == "True"
        assert env.get("configmap", "a") is None


@pytest.mark.parametrize(
    ("target", "ignored"),
    [
        pytest.param(None, True, id="no-target"),
        pytest.param({"kind": "Deployment"}, True, id="kind"),
        pytest.param({"kind": "Deploy.*", "name": "we.", "namespace": "apps"}, True, id="regex"),
        pytest.param({"kind": "StatefulSet"}, False, id="other-kind"),
        pytest.param({"group": "apps", "version": "v1"}, True, id="group-version"),
        pytest.param({"labelSelector": "tier in (front, edge),!legacy"}, True, id="labels-in"),
        pytest.param({"labelSelector": "tier=back"}, False, id="labels-mismatch"),
        pytest.param({"annotationSelector": "hpa"}, True, id="annotation-exists"),
    ],
)
def test_drift_ignore_rules_select_objects_and_remove_paths(
    target: dict[str, Any] | None, ignored: bool
):
    web = deployment("web", "apps", annotations={"hpa": "on"})
    web["metadata"]["labels"] = {"tier": "front"}
    rule = DriftIgnoreRule.model_validate(
        {"paths": ["/spec/replicas", "/spec/template/spec/containers/0/image", "/no/such"]}
        | ({"target": target} if target else {})
    )
    out = ignore_drift(web, [rule])
    assert ("replicas" not in out["spec"]) is ignored
    assert ("image" not in out["spec"]["template"]["spec"]["containers"][0]) is ignored
    assert web["spec"]["replicas"] == 1  # the input is left alone


async def test_drift_ignore_rules_leave_autoscaled_replicas_alone(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    rules = [{"paths": ["/spec/replicas"], "target": {"kind": "Deployment"}}]
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev = await env.publish(selector_repo("web"))
        key = await env.apply(kustomization("app", driftIgnoreRules=rules))
        await env.ready(key, rev)
        scaled = env.kube.kubectl("scale", "deployment/web", "-n", "apps", "--replicas=4")
        assert scaled.returncode == 0, scaled.stderr
        await env.reconciled(key)
        assert env.get("deployment", "web", "-n", "apps")["spec"]["replicas"] == 4


async def test_override_undoes_kubectl_changes_and_merge_keeps_them(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    merged = configmap("merged", "default", v="git")
    merged["metadata"]["annotations"] = {"kustomize.toolkit.fluxcd.io/ssa": "Merge"}
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev = await env.publish(
            {"a.yaml": manifests(configmap("owned", "default", v="git"), merged)}
        )
        key = await env.apply(kustomization("app"))
        await env.ready(key, rev)
        for name in ("owned", "merged"):
            labelled = kubelite.kubectl("label", "configmap", name, "extra=manual")
            assert labelled.returncode == 0, labelled.stderr
            patched = kubelite.kubectl(
                "patch", "configmap", name, "--type=merge", "-p", '{"data":{"added":"manual"}}'
            )
            assert patched.returncode == 0, patched.stderr
        await env.reconciled(key)
        owned = env.get("configmap", "owned")
        assert "extra" not in owned["metadata"]["labels"]
        assert owned["data"] == {"v": "git"}
        shown = env.get("configmap", "owned", "--show-managed-fields")
        managers = {m["manager"] for m in shown["metadata"]["managedFields"]}
        assert managers == {"fluxbus"}
        kept = env.get("configmap", "merged")
        assert kept["metadata"]["labels"]["extra"] == "manual"
        assert kept["data"] == {"v": "git", "added": "manual"}
        # taken over once: the next reconcile writes nothing
        rv = owned["metadata"]["resourceVersion"]
        await env.reconciled(key)
        assert env.get("configmap", "owned")["metadata"]["resourceVersion"] == rv
