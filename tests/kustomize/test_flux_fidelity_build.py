"""Flux fidelity of the build side (issue #11): substitution inputs read from the
cluster, optional sources and `substituteStrategy`, and Flux kinds fluxbus does
not serve yet named plainly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from reconcile_helpers import condition, configmap, kustomization, manifests, namespace, running

from fluxbus_common.bus import Bus


def labelled(**data: str) -> dict[str, str]:
    """A repository with one ConfigMap whose data uses post-build variables."""
    return {"cm.yaml": manifests(configmap("app", "default", **data))}


async def test_substitute_from_reads_configmaps_and_secrets_created_in_the_cluster(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    """kustomization_varsub_test.go (TestKustomizationReconciler_Varsub): the
    ConfigMaps and Secrets of `substituteFrom` are read from the cluster, in the
    Kustomization's namespace; spec: "Post build variable substitution"."""
    async with running(bus, kubelite, tmp_path / "env") as env:
        for args in (
            ("create", "configmap", "cluster-vars", "--from-literal=color=red"),
            ("create", "secret", "generic", "cluster-secret", "--from-literal=token=s3cr3t"),
        ):
            created = kubelite.kubectl(*args)
            assert created.returncode == 0, created.stderr
        rev = await env.publish(labelled(color="${color}", token="${token}"))
        refs = [
            {"kind": "ConfigMap", "name": "cluster-vars"},
            {"kind": "Secret", "name": "cluster-secret"},
        ]
        key = await env.apply(kustomization("app", postBuild={"substituteFrom": refs}))
        await env.ready(key, rev)
        assert env.get("configmap", "app")["data"] == {"color": "red", "token": "s3cr3t"}


async def test_the_cluster_vars_layout_substitutes_from_what_another_kustomization_applied(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    """The layout of Flux's example repositories: an infrastructure Kustomization
    applies `cluster-vars`, the apps Kustomization depends on it and substitutes
    from it (spec: "Post build variable substitution", "Dependencies")."""
    repo = {
        "infra/vars.yaml": manifests(configmap("cluster-vars", "default", region="eu-1")),
        "apps/app.yaml": manifests(configmap("app", "default", region="${region}")),
    }
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev = await env.publish(repo)
        infra = await env.apply(kustomization("infra", path="./infra"))
        apps = await env.apply(
            kustomization(
                "apps",
                path="./apps",
                dependsOn=[{"name": "infra"}],
                postBuild={"substituteFrom": [{"kind": "ConfigMap", "name": "cluster-vars"}]},
            )
        )
        await env.ready(infra, rev)
        await env.ready(apps, rev)
        assert env.get("configmap", "app")["data"] == {"region": "eu-1"}


async def test_a_missing_substitute_from_source_says_where_it_was_looked_for(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    """kustomize_varsub.go `LoadVariables`: a missing non-optional reference fails the
    build (`BuildFailed`); fluxbus names both places it looked."""
    async with running(bus, kubelite, tmp_path / "env") as env:
        await env.publish(labelled(color="${color}"))
        refs = [{"kind": "ConfigMap", "name": "nowhere"}]
        key = await env.apply(kustomization("app", postBuild={"substituteFrom": refs}))
        status = await env.failing(key, "BuildFailed")
        message = condition(status)["message"]
        assert "ConfigMap/default/nowhere not found" in message
        assert "not in the cluster (namespace default)" in message
        assert "nor in the fluxbus store" in message


OPTIONAL = {"kind": "ConfigMap", "name": "absent", "optional": True}


@pytest.mark.parametrize(
    ("post_build", "expected"),
    [
        pytest.param(
            {"substituteStrategy": "Always"},
            {"color": "blue", "shape": "square"},
            id="always-without-variables-applies-defaults",
        ),
        pytest.param(
            {"substituteStrategy": "Always", "substituteFrom": [OPTIONAL]},
            {"color": "blue", "shape": "square"},
            id="always-with-an-absent-optional-source",
        ),
        pytest.param(
            {"substituteFrom": [OPTIONAL]},
            {"color": "${color:=blue}", "shape": "${shape:=square}"},
            id="with-variables-and-none-defined-skips-substitution",
        ),
        pytest.param(
            {
                "substitute": {"enabled": "true"},
                "substituteFrom": [OPTIONAL],
            },
            {"color": "blue", "shape": "square"},
            id="an-absent-optional-source-counts-as-empty",
        ),
    ],
)
async def test_substitute_strategy_and_optional_sources_follow_flux(
    bus: Bus, kubelite: Any, tmp_path: Path, post_build: dict[str, Any], expected: dict[str, str]
):
    """kustomization_varsub_test.go: TestKustomizationReconciler_VarsubAlways ("WithVariables
    strategy skips substitution without variables", "Always strategy substitutes defaults
    without variables") and TestKustomizationReconciler_VarsubOptional ("replaces vars
    tolerating absent ConfigMap"); spec: `.spec.postBuild.substituteStrategy`."""
    async with running(bus, kubelite, tmp_path / "env") as env:
        rev = await env.publish(labelled(color="${color:=blue}", shape="${shape:=square}"))
        key = await env.apply(kustomization("app", postBuild=post_build))
        await env.ready(key, rev)
        assert env.get("configmap", "app")["data"] == expected


async def test_always_in_strict_mode_still_fails_on_a_variable_without_default(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    """Flux's `--feature-gates=StrictPostBuildSubstitutions` (fluxbus's default): an
    unset variable without a default fails the build, `Always` or not."""
    async with running(bus, kubelite, tmp_path / "env") as env:
        await env.publish(labelled(color="${color:=blue}", zone="${zone}"))
        key = await env.apply(kustomization("app", postBuild={"substituteStrategy": "Always"}))
        status = await env.failing(key, "BuildFailed")
        assert "zone" in condition(status)["message"]
        assert env.get("configmap", "app") is None


def toolkit(api_version: str, kind: str, name: str, **spec: Any) -> dict[str, Any]:
    body = {"interval": "5m", **spec}
    meta = {"name": name, "namespace": "default"}
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": body}


@pytest.mark.parametrize(
    ("doc", "subject", "said"),
    [
        pytest.param(
            toolkit("source.toolkit.fluxcd.io/v1", "OCIRepository", "oci", url="oci://x"),
            "OCIRepository/default/oci",
            "OCIRepository (source.toolkit.fluxcd.io) is a Flux kind",
            id="ocirepository",
        ),
        pytest.param(
            toolkit("source.toolkit.fluxcd.io/v1", "Bucket", "bucket", bucketName="b"),
            "Bucket/default/bucket",
            "Bucket (source.toolkit.fluxcd.io) is a Flux kind",
            id="bucket",
        ),
        pytest.param(
            toolkit("source.extensions.fluxcd.io/v1beta1", "ArtifactGenerator", "gen"),
            "ArtifactGenerator/default/gen",
            "ArtifactGenerator (source.extensions.fluxcd.io) is a Flux kind",
            id="artifactgenerator",
        ),
        pytest.param(
            toolkit(
                "kustomize.toolkit.fluxcd.io/v1",
                "Kustomization",
                "generated",
                prune=True,
                sourceRef={"kind": "ExternalArtifact", "name": "gen"},
            ),
            "Kustomization/default/generated",
            "its sourceRef kind ExternalArtifact (source.toolkit.fluxcd.io) is a Flux kind",
            id="sourceref-externalartifact",
        ),
    ],
)
async def test_flux_kinds_fluxbus_does_not_serve_are_named_with_their_file_and_not_waited_on(
    bus: Bus, kubelite: Any, tmp_path: Path, doc: dict[str, Any], subject: str, said: str
):
    """Issue #11: instead of "no matches for kind …" (kustomize-controller's answer when
    the CRD is missing) or a `wait` that burns its whole timeout, the Kustomization
    stalls before applying anything, naming the object, its file and the kind."""
    repo = {
        "apps/ns.yaml": manifests(namespace("apps")),
        "apps/flux/release.yaml": manifests(doc),
    }
    async with running(bus, kubelite, tmp_path / "env") as env:
        await env.publish(repo)
        key = await env.apply(kustomization("app", path="./apps", wait=True, timeout="10m"))
        status = await env.failing(key, "ReconciliationFailed")
        message = condition(status)["message"]
        assert f"{subject} in apps/flux/release.yaml: {said}" in message
        assert condition(status, "Stalled")["status"] == "True"
        assert env.get("namespace", "apps") is None  # nothing applied


async def test_a_source_ref_fluxbus_does_not_serve_is_refused_plainly(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    """spec: "Source reference" (GitRepository, OCIRepository, Bucket, ExternalArtifact):
    a sourceRef kind fluxbus does not serve stalls with a plain sentence."""
    async with running(bus, kubelite, tmp_path / "env") as env:
        ref = {"kind": "ExternalArtifact", "name": "gen"}
        key = await env.apply(kustomization("app", sourceRef=ref))
        status = await env.failing(key, "ArtifactFailed")
        assert condition(status)["message"] == (
            "spec.sourceRef: ExternalArtifact (source.toolkit.fluxcd.io) is a Flux kind "
            "fluxbus does not serve yet (fluxbus serves GitRepository)"
        )
        assert condition(status, "Stalled")["status"] == "True"
