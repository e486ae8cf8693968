"""Who gets a HelmChart's credentials, and what is checked on the way: basic auth goes
to the repository's own host (elsewhere only with `passCredentials`), a chart whose
digest differs from the index is refused, and an OCI repository reads a Docker config
Secret as the image-reflector does."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import yaml
from helm_helpers import (
    apply,
    condition,
    helm_sources,
    helmchart,
    helmrepository,
    put_secret,
    secret,
    wait_failing,
    wait_ready,
)

from fluxbus_common.bus import Bus
from fluxbus_git.testing.tls import TestCA
from fluxbus_helmsdk import HelmEngine, RegistryAuth
from fluxbus_helmsdk.testing import ChartRepoFactory, make_chart, package_chart, push_oci
from fluxbus_image.testing import RegistryServer

USER, PASSWORD = "flux", "pa55-for-charts"


async def test_credentials_reach_another_host_only_with_pass_credentials(
    bus: Bus, chart_repo_factory: ChartRepoFactory, tmp_path: Path
):
    index_host = await chart_repo_factory(basic_auth=(USER, PASSWORD))
    chart_host = await chart_repo_factory(basic_auth=(USER, PASSWORD))
    await chart_host.add(make_chart(tmp_path / "src", "web", "1.0.0"))
    # the index is served by one host, the archive by another (a CDN, say)
    index = yaml.safe_load((chart_host.dir / "index.yaml").read_text())
    assert index["entries"]["web"][0]["urls"][0].startswith(chart_host.url)
    (index_host.dir / "index.yaml").write_text(yaml.safe_dump(index))
    async with helm_sources(bus, tmp_path):
        await put_secret(bus, secret("auth", username=USER, password=PASSWORD))
        for name, passing in (("kept", False), ("passed", True)):
            repo = helmrepository(
                name, index_host.url, secretRef={"name": "auth"}, passCredentials=passing
            )
            await apply(bus, repo)
            await apply(bus, helmchart(name, "web", "HelmRepository", name))
        st = await wait_failing(bus, "HelmChart", "kept", "401")
        assert condition(st, "FetchFailed")["reason"] == "ChartPullError"
        assert PASSWORD not in json.dumps(st)
        await wait_ready(bus, "HelmChart", "passed", "1.0.0")


async def test_a_chart_that_differs_from_its_index_digest_is_refused(
    bus: Bus, chart_repo_factory: ChartRepoFactory, tmp_path: Path
):
    repo = await chart_repo_factory()
    archive = await repo.add(make_chart(tmp_path / "src", "web", "1.0.0"))
    other = package_chart(make_chart(tmp_path / "other", "web", "1.0.0", values={"x": 1}), tmp_path)
    shutil.copyfile(other, archive)  # swapped after indexing
    async with helm_sources(bus, tmp_path):
        await apply(bus, helmrepository("charts", repo.url))
        await apply(bus, helmchart("web", "web", "HelmRepository", "charts"))
        st = await wait_failing(bus, "HelmChart", "web", "does not match the index")
        assert condition(st, "Ready")["reason"] == "ChartPullError"
        assert "artifact" not in st


async def test_an_oci_repository_reads_a_docker_config_secret(
    bus: Bus, registry_basic: RegistryServer, helm_engine: HelmEngine, tmp_path: Path
):
    host = f"127.0.0.1:{registry_basic.backend_port}"
    auth = RegistryAuth(registry_basic.username, registry_basic.password, plain_http=True)
    tgz = package_chart(make_chart(tmp_path / "src", "podinfo", "6.1.0"), tmp_path / "pkg")
    await push_oci(tgz, f"oci://{host}/charts", auth=auth, engine=helm_engine)
    login = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
    config = json.dumps({"auths": {host: {"auth": login}}})
    async with helm_sources(bus, tmp_path):
        await put_secret(bus, secret("regcred", **{".dockerconfigjson": config}))
        repo = helmrepository(
            "oci", f"oci://{host}/charts", type="oci", insecure=True, secretRef={"name": "regcred"}
        )
        await apply(bus, repo)
        await apply(bus, helmchart("podinfo", "podinfo", "HelmRepository", "oci", version="6.1.0"))
        await wait_ready(bus, "HelmChart", "podinfo", "6.1.0")
        await apply(bus, helmchart("missing", "podinfo", "HelmRepository", "oci", version="9.x"))
        st = await wait_failing(bus, "HelmChart", "missing", "no 'podinfo' chart with version")
        assert condition(st, "Stalled")["reason"] == "InvalidChartReference"


async def test_a_cloud_provider_login_is_refused_clearly(bus: Bus, tmp_path: Path):
    async with helm_sources(bus, tmp_path):
        repo = helmrepository("ecr", "oci://123.dkr.ecr.example/charts", type="oci", provider="aws")
        await apply(bus, repo)
        await apply(bus, helmchart("app", "app", "HelmRepository", "ecr"))
        st = await wait_failing(bus, "HelmChart", "app", "spec.provider 'aws'")
        assert condition(st, "Stalled")["reason"] == "AuthenticationFailed"


async def test_an_oci_registry_over_mutual_tls_uses_cert_secret_ref(
    bus: Bus,
    registry_factory: Callable[..., RegistryServer],
    test_ca: TestCA,
    helm_engine: HelmEngine,
    tmp_path: Path,
):
    registry = registry_factory(tls=test_ca, require_client_cert=True)
    remote = f"oci://{registry.host}/charts"
    pems = {
        "ca.crt": test_ca.ca_pem.decode(),
        "tls.crt": test_ca.client_cert_pem.decode(),
        "tls.key": test_ca.client_key_pem.decode(),
    }
    auth = RegistryAuth(ca_pem=pems["ca.crt"], cert_pem=pems["tls.crt"], key_pem=pems["tls.key"])
    tgz = package_chart(make_chart(tmp_path / "src", "demo", "2.0.0"), tmp_path / "pkg")
    await push_oci(tgz, remote, auth=auth, engine=helm_engine)
    async with helm_sources(bus, tmp_path):
        await put_secret(bus, secret("tls", **pems))
        await apply(bus, helmrepository("oci", remote, type="oci", certSecretRef={"name": "tls"}))
        await apply(bus, helmchart("demo", "demo", "HelmRepository", "oci", version=">=1"))
        await wait_ready(bus, "HelmChart", "demo", "2.0.0")
