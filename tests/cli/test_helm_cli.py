"""The Helm kinds through the CLI: `get helmreleases|sources helm|sources chart`
with Flux's columns, `reconcile hr --with-source` (the HelmRepository, then the
HelmChart, then the HelmRelease), `suspend`/`resume`, `create source helm` and
`create helmrelease` (Flux's manifests and refusals), and shell completion —
against stand-in controllers answering reconcile requests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_helpers import Cli, controller
from typer.testing import CliRunner

from fluxbus_cli.app import app
from fluxbus_common.bus import Bus

INDEX_DIGEST = "sha256:" + "ab12" * 16

SOURCES = """
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: podinfo, namespace: flux-system}
spec: {interval: 10m, url: "https://stefanprodan.github.io/podinfo"}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: charts, namespace: flux-system}
spec: {interval: 10m, type: oci, url: "oci://ghcr.io/stefanprodan/charts"}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmChart
metadata: {name: flux-system-podinfo, namespace: flux-system}
spec:
  interval: 10m
  chart: podinfo
  version: ">=6.0.0"
  sourceRef: {kind: HelmRepository, name: podinfo}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: podinfo, namespace: flux-system}
spec:
  interval: 10m
  targetNamespace: apps
  chart:
    spec:
      chart: podinfo
      version: ">=6.0.0"
      sourceRef: {kind: HelmRepository, name: podinfo}
"""


def table(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]


def snapshot(version: int, chart_version: str, status: str, config: str) -> dict[str, Any]:
    return {
        "name": "apps-podinfo",
        "namespace": "apps",
        "version": version,
        "status": status,
        "chartName": "podinfo",
        "chartVersion": chart_version,
        "appVersion": chart_version,
        "configDigest": f"sha256:{config * 64}",
        "digest": f"sha256:{str(version) * 64}",
        "firstDeployed": f"2026-01-0{version}T00:00:00Z",
        "lastDeployed": f"2026-01-0{version}T00:00:00Z",
    }


async def put_status(bus: Bus, key: str, message: str, **fields: Any) -> None:
    entry = await bus.get_object(key)
    assert entry is not None
    generation = entry.value["metadata"]["generation"]
    ready = {"type": "Ready", "status": "True", "reason": "Succeeded", "message": message}
    status = {"observedGeneration": generation, "conditions": [ready], **fields}
    current = await bus.get_status(key)
    await bus.put_status(key, status, None if current is None else current.revision)


async def applied(cli: Cli) -> None:
    result = await cli("apply", "-f", "-", input=SOURCES)
    assert result.code == 0, result.output


async def test_get_helmreleases_shows_flux_s_columns_and_the_chart_version(cli: Cli, bus: Bus):
    await applied(cli)
    history = [snapshot(2, "6.5.1", "deployed", "b"), snapshot(1, "6.5.0", "superseded", "a")]
    await put_status(
        bus,
        "helmrelease.flux-system.podinfo",
        "Helm upgrade succeeded for release apps/apps-podinfo.v2 with chart podinfo@6.5.1",
        history=history,
        lastAttemptedRevision="6.5.1",
    )

    for words in (("helmreleases",), ("hr",), ("helmrelease", "podinfo")):
        result = await cli("get", *words, "-n", "flux-system")
        assert result.code == 0, result.output
        header, row = table(result.stdout)
        assert header == ["NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE", "AGE"]
        assert row[:5] == [
            "podinfo",
            "6.5.1",
            "False",
            "True",
            "Helm upgrade succeeded for release apps/apps-podinfo.v2 with chart podinfo@6.5.1",
        ]


async def test_get_sources_helm_shortens_the_index_digest_and_trusts_oci_repositories(
    cli: Cli, bus: Bus
):
    await applied(cli)
    artifact = {"revision": INDEX_DIGEST, "digest": INDEX_DIGEST, "path": "x", "url": "http://x"}
    await put_status(
        bus,
        "helmrepository.flux-system.podinfo",
        f"stored artifact: revision '{INDEX_DIGEST}'",
        artifact=artifact,
    )

    result = await cli("get", "sources", "helm", "-n", "flux-system")

    assert result.code == 0, result.output
    header, *rows = table(result.stdout)
    assert header == ["NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE", "AGE"]
    by_name = {row[0]: row for row in rows}
    # an OCI repository has no artifact: its REVISION cell is empty
    assert by_name["charts"][:4] == ["charts", "False", "True", "Helm repository is Ready"]
    assert by_name["podinfo"][:5] == [
        "podinfo",
        "sha256:ab12ab12",
        "False",
        "True",
        "stored artifact: revision 'sha256:ab12ab12'",
    ]


async def test_get_sources_chart_and_all_list_every_source_kind(cli: Cli, bus: Bus):
    await applied(cli)
    artifact = {"revision": "6.5.1", "digest": INDEX_DIGEST, "path": "x", "url": "http://x"}
    await put_status(
        bus,
        "helmchart.flux-system.flux-system-podinfo",
        "pulled 'podinfo' chart with version '6.5.1'",
        artifact=artifact,
    )

    chart = await cli("get", "sources", "chart", "-n", "flux-system")
    every = await cli("get", "sources", "all", "-n", "flux-system")
    wide = await cli("get", "helmcharts", "-n", "flux-system", "-o", "wide")

    assert table(chart.stdout)[1][:5] == [
        "flux-system-podinfo",
        "6.5.1",
        "False",
        "True",
        "pulled 'podinfo' chart with version '6.5.1'",
    ]
    names = [row[0] for row in table(every.stdout) if "/" in row[0]]
    assert names == [
        "helmrepository/charts",
        "helmrepository/podinfo",
        "helmchart/flux-system-podinfo",
    ]
    assert table(wide.stdout)[1][-4:] == ["podinfo", ">=6.0.0", "HelmRepository/podinfo", "10m"]


async def test_reconcile_hr_with_source_reconciles_repository_then_chart_then_release(
    cli: Cli, bus: Bus
):
    await applied(cli)
    async with controller(bus, "helmrepository", "helmchart", "helmrelease") as fake:
        result = await cli("reconcile", "hr", "podinfo", "-n", "flux-system", "--with-source")

    assert result.code == 0, result.output
    assert fake.handled is not None
    assert [h.split("@")[0] for h in fake.handled] == [
        "helmrepository.flux-system.podinfo",
        "helmchart.flux-system.flux-system-podinfo",
        "helmrelease.flux-system.podinfo",
    ]
    assert "annotating HelmChart flux-system-podinfo in flux-system namespace" in result.stderr


async def test_reconcile_source_chart_and_helm_and_suspend_resume_a_release(cli: Cli, bus: Bus):
    await applied(cli)
    async with controller(bus, "helmrepository", "helmchart", "helmrelease") as fake:
        chart = await cli(
            "reconcile", "source", "chart", "flux-system-podinfo", "-n", "flux-system"
        )
        repo = await cli("reconcile", "source", "helm", "podinfo", "-n", "flux-system")
        suspended = await cli("suspend", "hr", "podinfo", "-n", "flux-system")
        refused = await cli("reconcile", "hr", "podinfo", "-n", "flux-system")
        resumed = await cli("resume", "helmrelease", "podinfo", "-n", "flux-system")

    assert chart.code == 0 and repo.code == 0, chart.output + repo.output
    assert suspended.code == 0 and "HelmRelease suspended" in suspended.stderr
    assert refused.code == 1 and "is suspended" in refused.stderr
    assert resumed.code == 0, resumed.output
    assert fake.handled is not None and fake.handled[-1].startswith(
        "helmrelease.flux-system.podinfo@"
    )
    doc = (await bus.get_object("helmrelease.flux-system.podinfo")).value
    assert doc["spec"]["suspend"] is False


async def test_reconcile_with_source_needs_the_generated_chart_to_exist(cli: Cli, bus: Bus):
    release = SOURCES.split("---")[-1].replace("name: podinfo, namespace", "name: other, namespace")
    await cli("apply", "-f", "-", input=release)
    async with controller(bus, "helmrepository", "helmchart", "helmrelease"):
        result = await cli("reconcile", "hr", "other", "-n", "flux-system", "--with-source")
    assert result.code == 1
    assert "flux-system-other" in result.stderr and "not found" in result.stderr


def exported(stdout: str) -> dict[str, Any]:
    assert stdout.startswith("---\n")
    doc: dict[str, Any] = yaml.safe_load(stdout)
    return doc


@pytest.mark.parametrize(
    ("flags", "spec"),
    [
        pytest.param(
            ("--url", "https://stefanprodan.github.io/podinfo"),
            {"interval": "1m0s", "url": "https://stefanprodan.github.io/podinfo"},
            id="https",
        ),
        pytest.param(
            ("--url", "oci://ghcr.io/charts", "--secret-ref", "creds", "--interval", "10m"),
            {
                "interval": "10m0s",
                "secretRef": {"name": "creds"},
                "type": "oci",
                "url": "oci://ghcr.io/charts",
            },
            id="oci-with-secret",
        ),
    ],
)
async def test_create_source_helm_export_prints_flux_s_manifest(cli: Cli, flags, spec):
    result = await cli("create", "source", "helm", "podinfo", *flags, "--export")
    assert result.code == 0, result.output
    assert exported(result.stdout) == {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "metadata": {"name": "podinfo", "namespace": "flux-system"},
        "spec": spec,
    }


async def test_create_helmrelease_export_merges_values_files_in_order(cli: Cli, tmp_path: Path):
    (tmp_path / "a.yaml").write_text("replicaCount: 1\nimage: {tag: '1.0', pullPolicy: Always}\n")
    (tmp_path / "b.yaml").write_text("image: {tag: '2.0'}\n")
    values = f"{tmp_path / 'a.yaml'},{tmp_path / 'b.yaml'}"
    result = await cli(
        "create", "hr", "podinfo",
        "--source", "HelmRepository/podinfo.flux-system",
        "--chart", "podinfo", "--chart-version", ">=6.0.0",
        "--target-namespace", "apps", "--values", values,
        "-n", "apps", "--export",
    )  # fmt: skip
    assert result.code == 0, result.output
    assert exported(result.stdout) == {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "podinfo", "namespace": "apps"},
        "spec": {
            "chart": {
                "spec": {
                    "chart": "podinfo",
                    "reconcileStrategy": "ChartVersion",
                    "sourceRef": {
                        "kind": "HelmRepository",
                        "name": "podinfo",
                        "namespace": "flux-system",
                    },
                    "version": ">=6.0.0",
                }
            },
            "interval": "1m0s",
            "storageNamespace": "apps",
            "targetNamespace": "apps",
            "values": {"replicaCount": 1, "image": {"tag": "2.0", "pullPolicy": "Always"}},
        },
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("create", "source", "helm", "x"), "url is required", id="no-url"),
        pytest.param(
            ("create", "source", "helm", "x", "--url", "ftp://h/charts"),
            "url scheme 'ftp' not supported, can be: http, https and oci",
            id="bad-scheme",
        ),
        pytest.param(
            ("create", "hr", "x", "--source", "HelmRepository/x"),
            "chart or chart-ref is required",
            id="no-chart",
        ),
        pytest.param(
            ("create", "hr", "x", "--source", "Bucket/x", "--chart", "c"),
            "Bucket",
            id="bucket-not-served",
        ),
        pytest.param(
            ("create", "hr", "x", "--source", "Helm/x", "--chart", "c"),
            "source kind 'Helm' is not supported, must be one of: HelmRepository",
            id="bad-source-kind",
        ),
        pytest.param(
            ("create", "hr", "x", "--chart-ref", "OCIRepository/x"),
            "OCIRepository",
            id="oci-chart-ref-not-served",
        ),
        pytest.param(
            ("create", "hr", "x", "--source", "HelmRepository/x", "--chart", "c", "--values", "/v"),
            "reading values from /v failed",
            id="missing-values-file",
        ),
    ],
)
async def test_create_refuses_as_flux_does(cli: Cli, args, message):
    result = await cli(*args, "--export")
    assert result.code != 0
    assert message in result.stderr


async def test_create_helmrelease_stores_it_and_waits_for_its_first_release(cli: Cli, bus: Bus):
    async with controller(bus, "helmrelease", message="Helm install succeeded"):
        result = await cli(
            "create", "helmrelease", "web", "--source", "HelmRepository/charts",
            "--chart", "web", "-n", "apps",
        )  # fmt: skip
    assert result.code == 0, result.output
    assert "HelmRelease created" in result.stderr
    assert (await bus.get_object("helmrelease.apps.web")) is not None


def test_shell_completion_knows_the_helm_kinds():
    runner = CliRunner()

    def complete(line: str) -> list[str]:
        env = {
            "_FLUXBUS_COMPLETE": "complete_bash",
            "COMP_WORDS": line,
            "COMP_CWORD": str(len(line.split(" ")) - 1),
        }
        return runner.invoke(app, [], prog_name="fluxbus", env=env).stdout.split()

    assert complete("fluxbus get helm") == [
        "helmcharts",
        "helmreleases",
        "helmrepo",
        "helmrepositories",
    ]
    assert "hr" in complete("fluxbus reconcile h")
    assert complete("fluxbus create source ") == ["git", "helm"]
    assert "helmrelease" in complete("fluxbus create h")


async def test_tree_shows_the_objects_of_a_helm_release_under_it(cli: Cli, bus: Bus):
    ks = """
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: infra, namespace: flux-system}
spec: {interval: 10m, path: ./infra, prune: true, sourceRef: {kind: GitRepository, name: repo}}
"""
    await applied(cli)
    assert (await cli("apply", "-f", "-", input=ks)).code == 0
    ks_inventory = {
        "entries": [
            {"id": "flux-system_podinfo_source.toolkit.fluxcd.io_HelmRepository", "v": "v1"},
            {"id": "flux-system_podinfo_helm.toolkit.fluxcd.io_HelmRelease", "v": "v2"},
        ]
    }
    hr_inventory = {
        "entries": [
            {"id": "apps_apps-podinfo_apps_Deployment", "v": "v1"},
            {"id": "apps_apps-podinfo__Service", "v": "v1"},
        ]
    }
    await put_status(bus, "kustomization.flux-system.infra", "applied", inventory=ks_inventory)
    await put_status(bus, "helmrelease.flux-system.podinfo", "installed", inventory=hr_inventory)

    result = await cli("tree", "ks", "infra", "-n", "flux-system")

    assert result.code == 0, result.output
    assert result.stdout.splitlines() == [
        "Kustomization/flux-system/infra",
        "├── HelmRelease/flux-system/podinfo",
        "│   ├── Deployment/apps/apps-podinfo",
        "│   └── Service/apps/apps-podinfo",
        "└── HelmRepository/flux-system/podinfo",
    ]


async def test_an_oci_helm_repository_is_static_so_reconcile_does_not_wait(cli: Cli, bus: Bus):
    await applied(cli)
    result = await cli("reconcile", "source", "helm", "charts", "-n", "flux-system")
    assert result.code == 0, result.output
    assert "reconciliation not supported by the object" in result.stderr
    doc = (await bus.get_object("helmrepository.flux-system.charts")).value
    assert "reconcile.fluxcd.io/requestedAt" not in (doc["metadata"].get("annotations") or {})
