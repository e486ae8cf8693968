"""Flux fidelity of the apply side (issue #11): what a cluster migrating from
Flux, and Flux's own tests, expect of garbage collection, field ownership,
drift ignore rules, condition reasons and the inventory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from reconcile_helpers import condition, configmap, kustomization, manifests, namespace, running

from fluxbus_common.bus import Bus

SSA = "kustomize.toolkit.fluxcd.io/ssa"


async def test_an_object_annotated_ssa_ignore_is_not_pruned_when_it_leaves_git(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    """kustomize-controller `deleteObjects` excludes `kustomize.toolkit.fluxcd.io/ssa:
    Ignore` from garbage collection (with `prune: disabled` and `reconcile: disabled`);
    spec: "Controlling the apply behavior of resources" › Ignore."""
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev1 = await env.publish(
            {"a.yaml": manifests(configmap("frozen", "default"), configmap("gone", "default"))}
        )
        key = await env.apply(kustomization("app"))
        await env.ready(key, rev1)
        annotated = kubelite.kubectl("annotate", "configmap", "frozen", f"{SSA}=Ignore")
        assert annotated.returncode == 0, annotated.stderr
        rev2 = await env.publish({"a.yaml": manifests(configmap("other", "default"))})
        await env.ready(key, rev2)
        assert env.get("configmap", "frozen") is not None
        assert env.get("configmap", "gone") is None


async def test_fields_flux_applied_are_taken_over_so_a_field_removed_from_git_goes(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    """kustomize-controller's apply cleans up field managers it replaces
    (`ApplyCleanupOptions.FieldManagers`, kustomization_disallowed_managers_test.go):
    fluxbus treats Flux's own manager, `kustomize-controller`, as its predecessor."""
    by_flux = configmap("settings", "default", a="1", b="2")
    by_flux["metadata"]["labels"] = {
        "kustomize.toolkit.fluxcd.io/name": "app",
        "kustomize.toolkit.fluxcd.io/namespace": "default",
    }
    async with running(bus, kubelite, tmp_path / "env") as env:
        applied = kubelite.kubectl(
            "apply",
            "--server-side",
            "--field-manager=kustomize-controller",
            "-f",
            "-",
            input=yaml.safe_dump(by_flux),
        )
        assert applied.returncode == 0, applied.stderr
        rev = await env.publish({"a.yaml": manifests(configmap("settings", "default", a="1"))})
        key = await env.apply(kustomization("app"))
        await env.ready(key, rev)
        live = env.get("configmap", "settings", "--show-managed-fields")
        assert live["data"] == {"a": "1"}
        assert {m["manager"] for m in live["metadata"]["managedFields"]} == {"fluxbus"}


@pytest.mark.parametrize("field", ["ignore", "driftIgnoreRules"])
async def test_ignored_fields_are_created_from_git_then_left_as_they_are(
    bus: Bus, kubelite: Any, tmp_path: Path, field: str
):
    """kustomization_drift_ignore_test.go (TestKustomizationReconciler_DriftIgnoreRules):
    the object is created with the ignored key's value from Git; an out-of-band change
    to it survives a new revision, a change to a managed key is reverted. spec:
    "Ignore Rules" (`spec.ignore`); fluxbus's `driftIgnoreRules` behaves the same."""

    def repo(managed: str) -> dict[str, str]:
        cm = configmap("drift", "default", **{"managed-key": managed, "ignored-key": "original"})
        return {"cm.yaml": manifests(cm)}

    rules = [{"paths": ["/data/ignored-key"]}]
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev1 = await env.publish(repo("v1"))
        key = await env.apply(kustomization("app", **{field: rules}))
        await env.ready(key, rev1)
        assert env.get("configmap", "drift")["data"] == {
            "managed-key": "v1",
            "ignored-key": "original",
        }
        patch = '{"data":{"ignored-key":"modified-externally"}}'
        patched = kubelite.kubectl("patch", "configmap", "drift", "--type=merge", "-p", patch)
        assert patched.returncode == 0, patched.stderr
        rev2 = await env.publish(repo("v2"))
        await env.ready(key, rev2)
        assert env.get("configmap", "drift")["data"] == {
            "managed-key": "v2",
            "ignored-key": "modified-externally",
        }
        tamper = '{"data":{"managed-key":"tampered"}}'
        patched = kubelite.kubectl("patch", "configmap", "drift", "--type=merge", "-p", tamper)
        assert patched.returncode == 0, patched.stderr
        rev3 = await env.publish(repo("v3"))
        await env.ready(key, rev3)
        assert env.get("configmap", "drift")["data"] == {
            "managed-key": "v3",
            "ignored-key": "modified-externally",
        }


async def test_a_failed_apply_is_reconciliation_failed_and_keeps_the_previous_inventory(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    """kustomization_controller.go `reconcile`: a failed apply marks Ready=False with
    `ReconciliationFailed` and returns before the inventory is replaced; spec:
    "Failed Kustomization" lists Flux's reasons (no DryRunFailed)."""
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev1 = await env.publish({"a.yaml": manifests(configmap("a", "default"))})
        key = await env.apply(kustomization("app"))
        before = (await env.ready(key, rev1))["inventory"]
        # stage 1 (the Namespace) applies, stage 3 fails: its namespace does not exist
        await env.publish({"a.yaml": manifests(namespace("fresh"), configmap("b", "missing-ns"))})
        status = await env.failing(key, "ReconciliationFailed")
        assert "ConfigMap/missing-ns/b dry-run failed" in condition(status)["message"]
        assert status["inventory"] == before
        assert status["lastAppliedRevision"] == rev1
