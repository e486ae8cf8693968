"""HelmChart end to end: charts pulled from a real chart repository over HTTP,
packaged from a real Git server's artifact, pulled from the real docker-registry over
OCI — through the controller runtime, a real nats-server and Helm's engine."""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import yaml
from helm_helpers import (
    apply,
    artifact_bytes,
    condition,
    gitrepository,
    helm_sources,
    helmchart,
    helmrepository,
    put_secret,
    secret,
    status,
    wait_failing,
    wait_ready,
)

from fluxbus_common import keys
from fluxbus_common.bus import Bus
from fluxbus_common.testing.plugin import wait_for
from fluxbus_git.testing import GitHTTPServer, GitRepo
from fluxbus_helmsdk import HelmEngine, RegistryAuth
from fluxbus_helmsdk.testing import ChartRepoFactory, make_chart, package_chart, push_oci
from fluxbus_image.testing import RegistryServer


def chart_files(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def chart_yaml(data: bytes, name: str) -> dict[str, Any]:
    return yaml.safe_load(chart_files(data)[f"{name}/Chart.yaml"])


def chart_values(data: bytes, name: str) -> dict[str, Any]:
    return yaml.safe_load(chart_files(data)[f"{name}/values.yaml"])


async def test_a_version_range_pulls_the_highest_matching_chart(
    bus: Bus, chart_repo_factory: ChartRepoFactory, tmp_path: Path
):
    repo = await chart_repo_factory()
    for version in ("1.0.0", "1.4.2", "2.0.0", "1.5.0-rc.1"):
        await repo.add(make_chart(tmp_path / version, "web", version))
    async with helm_sources(bus, tmp_path):
        await apply(bus, helmrepository("charts", repo.url))
        await apply(bus, helmchart("web", "web", "HelmRepository", "charts", version="1.x"))
        st = await wait_ready(bus, "HelmChart", "web", "1.4.2")
        assert condition(st, "Ready")["message"] == "pulled 'web' chart with version '1.4.2'"
        assert st["observedChartName"] == "web"
        repo_rev = (await wait_ready(bus, "HelmRepository", "charts"))["artifact"]["revision"]
        assert st["observedSourceArtifactRevision"] == repo_rev
        data = await artifact_bytes(bus, st, tmp_path)
        assert data == (repo.dir / "web-1.4.2.tgz").read_bytes()
        events = await bus.recent_events()
        assert any(e.reason == "ChartPullSucceeded" for e in events)


async def test_values_files_are_merged_into_the_repackaged_chart(
    bus: Bus, chart_repo_factory: ChartRepoFactory, tmp_path: Path
):
    repo = await chart_repo_factory()
    chart = make_chart(tmp_path / "src", "web", "1.0.0", values={"replicaCount": 1})
    (chart / "values-prod.yaml").write_text("replicaCount: 3\nimage: {tag: prod}\n")
    await repo.add(chart)
    async with helm_sources(bus, tmp_path):
        await apply(bus, helmrepository("charts", repo.url))
        spec = {"valuesFiles": ["values.yaml", "values-prod.yaml"]}
        await apply(bus, helmchart("web", "web", "HelmRepository", "charts", **spec))
        st = await wait_ready(bus, "HelmChart", "web", "1.0.0+1")
        assert st["observedValuesFiles"] == ["values.yaml", "values-prod.yaml"]
        assert "merged values files" in condition(st, "Ready")["message"]
        data = await artifact_bytes(bus, st, tmp_path)
        values = chart_values(data, "web")
        assert values["replicaCount"] == 3
        assert values["image"] == {"repository": "nginx", "tag": "prod"}
        assert chart_yaml(data, "web")["version"] == "1.0.0+1"


async def test_a_missing_values_file_stalls_unless_ignored(
    bus: Bus, chart_repo_factory: ChartRepoFactory, tmp_path: Path
):
    repo = await chart_repo_factory()
    await repo.add(make_chart(tmp_path / "src", "web", "1.0.0"))
    async with helm_sources(bus, tmp_path):
        await apply(bus, helmrepository("charts", repo.url))
        files = {"valuesFiles": ["values.yaml", "absent.yaml"]}
        await apply(bus, helmchart("strict", "web", "HelmRepository", "charts", **files))
        st = await wait_failing(bus, "HelmChart", "strict", "no values file found at path")
        assert condition(st, "Stalled")["reason"] == "ValuesFilesError"
        assert condition(st, "BuildFailed")["status"] == "True"
        lenient = helmchart(
            "lenient", "web", "HelmRepository", "charts", ignoreMissingValuesFiles=True, **files
        )
        await apply(bus, lenient)
        st = await wait_ready(bus, "HelmChart", "lenient")
        assert st["observedValuesFiles"] == ["values.yaml"]


async def test_a_chart_from_git_with_the_revision_strategy_follows_each_commit(
    bus: Bus, git_repo: GitRepo, git_http_server: GitHTTPServer, tmp_path: Path
):
    chart = make_chart(tmp_path / "src", "app", "0.3.0")
    files = {
        f"charts/app/{p.relative_to(chart)}": p.read_text() for p in chart.rglob("*") if p.is_file()
    }
    first = git_repo.commit(files, branch="main", message="chart")
    async with helm_sources(bus, tmp_path):
        await apply(bus, gitrepository("repo", git_http_server.url(git_repo)))
        doc = helmchart(
            "app", "./charts/app", "GitRepository", "repo", reconcileStrategy="Revision"
        )
        await apply(bus, doc)
        st = await wait_ready(bus, "HelmChart", "app", f"0.3.0+{first[:12]}")
        assert condition(st, "Ready")["message"].startswith("packaged 'app' chart")
        assert st["observedSourceArtifactRevision"] == f"main@sha1:{first}"
        data = await artifact_bytes(bus, st, tmp_path)
        assert chart_yaml(data, "app")["version"] == f"0.3.0+{first[:12]}"

        second = git_repo.commit({"charts/app/README.md": "docs\n"}, branch="main", message="docs")
        await apply(
            bus,
            {
                **gitrepository("repo", git_http_server.url(git_repo)),
                "metadata": {
                    "name": "repo",
                    "namespace": "flux-system",
                    "annotations": {keys.RECONCILE_REQUESTED_AT: "now"},
                },
            },
        )
        # the HelmChart follows its source's new revision without a request of its own
        await wait_ready(bus, "HelmChart", "app", f"0.3.0+{second[:12]}")


async def test_a_bad_chart_in_git_names_the_file_and_keeps_the_previous_artifact(
    bus: Bus, git_repo: GitRepo, git_http_server: GitHTTPServer, tmp_path: Path
):
    chart = make_chart(tmp_path / "src", "app", "0.3.0")
    files = {
        f"charts/app/{p.relative_to(chart)}": p.read_text() for p in chart.rglob("*") if p.is_file()
    }
    git_repo.commit(files, branch="main", message="chart")
    async with helm_sources(bus, tmp_path):
        await apply(bus, gitrepository("repo", git_http_server.url(git_repo)))
        await apply(bus, helmchart("app", "charts/app", "GitRepository", "repo"))
        good = await wait_ready(bus, "HelmChart", "app", "0.3.0")
        git_repo.commit(
            {"charts/app/Chart.yaml": "name: app\nversion: [broken\n"},
            branch="main",
            message="oops",
        )
        await apply(
            bus,
            {
                **gitrepository("repo", git_http_server.url(git_repo)),
                "metadata": {
                    "name": "repo",
                    "namespace": "flux-system",
                    "annotations": {keys.RECONCILE_REQUESTED_AT: "now"},
                },
            },
        )
        st = await wait_failing(bus, "HelmChart", "app", "charts/app/Chart.yaml")
        assert st["artifact"] == good["artifact"]
        assert condition(st, "FetchFailed")["reason"] == "InvalidChartReference"


async def test_a_chart_path_leaving_the_artifact_is_refused(
    bus: Bus, git_repo: GitRepo, git_http_server: GitHTTPServer, tmp_path: Path
):
    git_repo.commit({"README.md": "x\n"}, branch="main", message="init")
    async with helm_sources(bus, tmp_path):
        await apply(bus, gitrepository("repo", git_http_server.url(git_repo)))
        await apply(bus, helmchart("escape", "../../etc", "GitRepository", "repo"))
        st = await wait_failing(bus, "HelmChart", "escape", "must not contain '..'")
        assert condition(st, "Stalled") is not None


async def test_an_oci_chart_is_pulled_with_the_repository_credentials(
    bus: Bus, registry_basic: RegistryServer, helm_engine: HelmEngine, tmp_path: Path
):
    auth = RegistryAuth(registry_basic.username, registry_basic.password, plain_http=True)
    # the registry itself: its counting front does not rewrite blob upload locations
    remote = f"oci://127.0.0.1:{registry_basic.backend_port}/charts"
    for version in ("0.1.0", "0.2.0", "1.0.0"):
        tgz = package_chart(make_chart(tmp_path / version, "podinfo", version), tmp_path / "pkg")
        await push_oci(tgz, remote, auth=auth, engine=helm_engine)
    async with helm_sources(bus, tmp_path):
        await put_secret(
            bus, secret("creds", username=auth.username or "", password=auth.password or "")
        )
        await apply(
            bus,
            helmrepository("oci", remote, type="oci", insecure=True, secretRef={"name": "creds"}),
        )
        await apply(bus, helmchart("podinfo", "podinfo", "HelmRepository", "oci", version="<1.0.0"))
        st = await wait_ready(bus, "HelmChart", "podinfo", "0.2.0")
        assert "observedSourceArtifactRevision" not in st
        data = await artifact_bytes(bus, st, tmp_path)
        assert chart_yaml(data, "podinfo")["version"] == "0.2.0"
        assert json.dumps(st).find(auth.password or "?") == -1


async def test_verification_is_refused_rather_than_pretended(
    bus: Bus, chart_repo_factory: ChartRepoFactory, tmp_path: Path
):
    repo = await chart_repo_factory()
    await repo.add(make_chart(tmp_path / "src", "web", "1.0.0"))
    async with helm_sources(bus, tmp_path):
        await apply(bus, helmrepository("charts", repo.url))
        doc = helmchart("web", "web", "HelmRepository", "charts", verify={"provider": "cosign"})
        await apply(bus, doc)
        st = await wait_failing(
            bus, "HelmChart", "web", "chart verification with cosign is not supported by fluxbus"
        )
        assert condition(st, "Stalled") is not None
        assert condition(st, "SourceVerified")["status"] == "False"
        assert "artifact" not in st


async def test_deleting_a_chart_collects_its_artifacts_and_suspend_freezes_it(
    bus: Bus, chart_repo_factory: ChartRepoFactory, tmp_path: Path
):
    repo = await chart_repo_factory()
    await repo.add(make_chart(tmp_path / "a", "web", "1.0.0"))
    async with helm_sources(bus, tmp_path):
        await apply(bus, helmrepository("charts", repo.url))
        doc = helmchart("web", "web", "HelmRepository", "charts")
        await apply(bus, doc)
        st = await wait_ready(bus, "HelmChart", "web", "1.0.0")
        prefix = "helmchart/flux-system/web/"
        assert await bus.list_artifacts(prefix) == [st["artifact"]["path"]]

        # suspended: a newer chart in the repository is not picked up
        doc["spec"]["suspend"] = True
        await apply(bus, doc)
        await repo.add(make_chart(tmp_path / "b", "web", "1.1.0"))
        await apply(bus, helmrepository("charts", repo.url, interval="1m"))
        await wait_for(lambda: _repo_has(bus, "1.1.0"), message="the repository index has 1.1.0")
        assert (await status(bus, "HelmChart", "web"))["artifact"] == st["artifact"]
        doc["spec"]["suspend"] = False
        await apply(bus, doc)
        await wait_ready(bus, "HelmChart", "web", "1.1.0")

        await bus.request_delete("helmchart.flux-system.web")

        async def gone() -> bool:
            return await bus.get_object("helmchart.flux-system.web") is None

        await wait_for(gone, message="finalized")
        assert await bus.list_artifacts(prefix) == []


async def _repo_has(bus: Bus, version: str) -> bool:
    st = await status(bus, "HelmRepository", "charts")
    if not st.get("artifact"):
        return False
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "index"
        await bus.get_artifact(st["artifact"]["path"], dest)
        index = json.loads(dest.read_bytes())
    return any(v["version"] == version for v in index["entries"]["web"])


async def test_a_new_index_revision_brings_the_newer_chart_without_a_request(
    bus: Bus, chart_repo_factory: ChartRepoFactory, tmp_path: Path
):
    repo = await chart_repo_factory()
    await repo.add(make_chart(tmp_path / "a", "web", "1.0.0"))
    async with helm_sources(bus, tmp_path):
        repository = helmrepository("charts", repo.url)
        await apply(bus, repository)
        await apply(bus, helmchart("web", "web", "HelmRepository", "charts", version="1.x"))
        await wait_ready(bus, "HelmChart", "web", "1.0.0")
        await repo.add(make_chart(tmp_path / "b", "web", "1.1.0"))
        repository["metadata"]["annotations"] = {keys.RECONCILE_REQUESTED_AT: "new-chart"}
        await apply(bus, repository)
        st = await wait_ready(bus, "HelmChart", "web", "1.1.0")
        assert "lastHandledReconcileAt" not in st
