"""`fluxbus create source git` and `fluxbus create kustomization` with Flux's flags:
the manifest `--export` prints, Flux's refusals, and creating then waiting for
the first reconcile."""

from __future__ import annotations

import pytest
import yaml
from cli_helpers import Cli, controller

from fluxbus_common import keys
from fluxbus_common.bus import Bus

URL = "https://github.com/stefanprodan/podinfo"


def exported(stdout: str) -> dict:
    assert stdout.startswith("---\n")
    return yaml.safe_load(stdout)


@pytest.mark.parametrize(
    ("flags", "spec"),
    [
        pytest.param(
            ("--branch", "master"),
            {"interval": "1m0s", "ref": {"branch": "master"}, "url": URL},
            id="branch",
        ),
        pytest.param(
            ("--tag", "6.5.0", "--interval", "5m", "--secret-ref", "auth"),
            {
                "interval": "5m0s",
                "ref": {"tag": "6.5.0"},
                "secretRef": {"name": "auth"},
                "url": URL,
            },
            id="tag-interval-secret",
        ),
        pytest.param(
            ("--tag-semver", ">=6.0.0", "--branch", "master"),
            {"interval": "1m0s", "ref": {"semver": ">=6.0.0"}, "url": URL},
            id="semver-wins-over-branch",
        ),
        pytest.param(
            ("--semver", "6.x"),
            {"interval": "1m0s", "ref": {"semver": "6.x"}, "url": URL},
            id="semver-alias",
        ),
        pytest.param(
            ("--commit", "abc123", "--branch", "main"),
            {"interval": "1m0s", "ref": {"branch": "main", "commit": "abc123"}, "url": URL},
            id="commit-keeps-its-branch",
        ),
    ],
)
async def test_create_source_git_export_prints_flux_s_manifest(cli: Cli, flags, spec):
    result = await cli("create", "source", "git", "podinfo", "--url", URL, *flags, "--export")
    assert result.code == 0, result.stderr
    assert exported(result.stdout) == {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "podinfo", "namespace": "flux-system"},
        "spec": spec,
    }


@pytest.mark.parametrize(
    ("flags", "spec"),
    [
        pytest.param(
            ("--source", "podinfo", "--path", "./kustomize", "--prune"),
            {
                "interval": "1m0s",
                "path": "./kustomize",
                "prune": True,
                "sourceRef": {"kind": "GitRepository", "name": "podinfo"},
            },
            id="name-only",
        ),
        pytest.param(
            (
                "--source",
                "GitRepository/podinfo.flux-system",
                "--path",
                "deploy/webapp/",
                "--target-namespace",
                "webapp",
                "--depends-on",
                "infra,other/db",
                "--interval",
                "10m",
            ),
            {
                "dependsOn": [{"name": "infra"}, {"name": "db", "namespace": "other"}],
                "interval": "10m0s",
                "path": "./deploy/webapp",
                "prune": False,
                "sourceRef": {
                    "kind": "GitRepository",
                    "name": "podinfo",
                    "namespace": "flux-system",
                },
                "targetNamespace": "webapp",
            },
            id="kind-namespace-depends-on",
        ),
    ],
)
async def test_create_kustomization_export_prints_flux_s_manifest(cli: Cli, flags, spec):
    result = await cli("create", "kustomization", "webapp", *flags, "--export")
    assert result.code == 0, result.stderr
    assert exported(result.stdout) == {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "webapp", "namespace": "flux-system"},
        "spec": spec,
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("source", "git", "x", "--url", URL),
            "a Git ref is required, use one of the following: --branch",
            id="no-ref",
        ),
        pytest.param(
            ("source", "git", "x", "--url", "ftp://host/repo", "--branch", "main"),
            "git URL scheme 'ftp' not supported, can be: ssh, http and https",
            id="bad-scheme",
        ),
        pytest.param(
            ("source", "git", "x", "--url", URL, "--branch", "main", "--interval", "often"),
            '--interval: invalid duration "often"',
            id="bad-interval",
        ),
        pytest.param(
            ("kustomization", "x", "--path", "./"), "--source is required", id="no-source"
        ),
        pytest.param(
            ("kustomization", "x", "--source", "OCIRepository/podinfo"),
            "OCIRepository (source.toolkit.fluxcd.io) is a Flux kind fluxbus does not serve yet",
            id="oci-source-not-served",
        ),
        pytest.param(
            ("kustomization", "x", "--source", "HelmChart/podinfo"),
            "source kind 'HelmChart' is not supported, must be one of: GitRepository",
            id="unknown-source-kind",
        ),
        pytest.param(
            ("kustomization", "x", "--source", "podinfo", "--path", "../elsewhere"),
            '--path must stay inside the source, got "../elsewhere"',
            id="path-escapes",
        ),
    ],
)
async def test_create_refuses_what_flux_refuses(cli: Cli, args, message):
    result = await cli("create", *args, "--export")
    assert result.code == 1
    assert message in result.stderr
    assert result.stdout == ""


async def test_create_source_git_stores_it_and_waits_for_the_first_artifact(cli: Cli, bus: Bus):
    async with controller(bus, "gitrepository") as fake:
        result = await cli("create", "source", "git", "podinfo", "--url", URL, "--branch", "master")

    assert result.code == 0, result.stderr
    assert "✔ GitRepository created" in result.stderr
    assert "✔ fetched revision main@sha1:4b2c5e0d" in result.stderr
    stored = await bus.get_object("gitrepository.flux-system.podinfo")
    assert stored is not None
    assert stored.value["spec"] == {"interval": "1m0s", "ref": {"branch": "master"}, "url": URL}
    token = stored.value["metadata"]["annotations"][keys.RECONCILE_REQUESTED_AT]
    assert fake.handled == [f"gitrepository.flux-system.podinfo@{token}"]


async def test_create_kustomization_without_wait_only_stores_it(cli: Cli, bus: Bus):
    result = await cli(
        "create", "ks", "apps", "--source", "podinfo", "--path", "./kustomize", "--no-wait"
    )
    assert result.code == 0, result.stderr
    stored = await bus.get_object("kustomization.flux-system.apps")
    assert stored is not None
    assert stored.value["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "podinfo"}


async def test_an_exported_object_applies_as_is(cli: Cli, bus: Bus):
    printed = await cli(
        "create", "source", "git", "podinfo", "--url", URL, "--tag", "6.5.0", "--export"
    )
    applied = await cli("apply", "-f", "-", input=printed.stdout)
    assert applied.code == 0, applied.stderr
    assert applied.stdout.strip() == "gitrepository/flux-system/podinfo created"
