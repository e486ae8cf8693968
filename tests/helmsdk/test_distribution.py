"""Charts from OCI registries (the real docker-registry) and HTTP(S) chart repositories."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
import yaml

from fluxbus_git.testing.tls import TestCA
from fluxbus_helmsdk import HelmEngine, RegistryAuth, RegistryError
from fluxbus_helmsdk.testing import ChartRepo, make_chart, package_chart, push_oci
from fluxbus_image.testing.registry_server import RegistryServer


def backend(registry: RegistryServer) -> str:
    """Where to push: the registry itself (its counting front does not rewrite upload URLs)."""
    return f"oci://127.0.0.1:{registry.backend_port}/charts"


def versions(tmp_path: Path, *numbers: str) -> list[Path]:
    return [
        package_chart(make_chart(tmp_path / v, "demo", version=v), tmp_path / "dist")
        for v in numbers
    ]


async def test_pushed_charts_are_listed_newest_first_and_pulled_back(
    helm_engine: HelmEngine, registry: RegistryServer, tmp_path: Path
) -> None:
    remote = f"oci://{registry.host}/charts"
    for archive in versions(tmp_path, "0.1.0", "0.10.0", "0.2.0"):
        await push_oci(archive, backend(registry), engine=helm_engine)
    anonymous = RegistryAuth(plain_http=True)
    tags = await helm_engine.oci_tags(f"{remote}/demo", auth=anonymous)
    assert tags == ["0.10.0", "0.2.0", "0.1.0"]
    pulled = await helm_engine.oci_pull(f"{remote}/demo", "0.2.0", auth=anonymous)
    assert (await helm_engine.chart_info(pulled)).version == "0.2.0"


async def test_a_registry_with_basic_auth_needs_the_right_password(
    helm_engine: HelmEngine, registry_basic: RegistryServer, tmp_path: Path
) -> None:
    remote = f"oci://{registry_basic.host}/charts"
    auth = RegistryAuth(registry_basic.username, registry_basic.password, plain_http=True)
    (archive,) = versions(tmp_path, "1.0.0")
    await push_oci(archive, backend(registry_basic), auth=auth, engine=helm_engine)
    assert await helm_engine.oci_tags(f"{remote}/demo", auth=auth) == ["1.0.0"]
    assert await helm_engine.oci_pull(f"{remote}/demo", "1.0.0", auth=auth)

    wrong = RegistryAuth(registry_basic.username, "not-the-password", plain_http=True)
    for attempt in (
        helm_engine.oci_tags(f"{remote}/demo", auth=wrong),
        helm_engine.oci_pull(f"{remote}/demo", "1.0.0", auth=RegistryAuth(plain_http=True)),
    ):
        with pytest.raises(RegistryError) as caught:
            await attempt
        assert "not-the-password" not in str(caught.value)


async def test_pulling_a_version_that_does_not_exist_is_a_registry_error(
    helm_engine: HelmEngine, registry: RegistryServer, tmp_path: Path
) -> None:
    remote = f"oci://{registry.host}/charts"
    (archive,) = versions(tmp_path, "1.0.0")
    await push_oci(archive, backend(registry), engine=helm_engine)
    with pytest.raises(RegistryError):
        await helm_engine.oci_pull(f"{remote}/demo", "9.9.9", auth=RegistryAuth(plain_http=True))


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def fetch_index(repo: ChartRepo, **kwargs: object) -> dict[str, object]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(repo.index_url, **kwargs) as response,  # type: ignore[arg-type]
    ):
        response.raise_for_status()
        index: dict[str, object] = yaml.safe_load(await response.text())
        return index


async def test_a_chart_repository_serves_an_index_made_by_the_sdk(
    chart_repo: ChartRepo, tmp_path: Path
) -> None:
    await chart_repo.add(make_chart(tmp_path / "a", "demo", version="0.1.0"))
    archive = await chart_repo.add(make_chart(tmp_path / "b", "demo", version="0.2.0"))
    index = await fetch_index(chart_repo)
    entries = index["entries"]
    assert isinstance(entries, dict)
    assert sorted(e["version"] for e in entries["demo"]) == ["0.1.0", "0.2.0"]
    assert f"{chart_repo.url}/{archive.name}" in [u for e in entries["demo"] for u in e["urls"]]


async def test_a_chart_repository_can_ask_for_basic_auth_and_serve_https(
    chart_repo_factory: object, tmp_path: Path
) -> None:
    repo: ChartRepo = await chart_repo_factory(basic_auth=("helm", "pa55"), tls=True)  # type: ignore[operator]
    await repo.add(make_chart(tmp_path, "demo"))
    assert repo.url.startswith("https://") and repo.ca_pem
    trust = ssl.create_default_context(cadata=repo.ca_pem.decode())
    with pytest.raises(aiohttp.ClientResponseError) as refused:
        await fetch_index(repo, ssl=trust)
    assert refused.value.status == 401
    index = await fetch_index(repo, ssl=trust, headers={"Authorization": basic("helm", "pa55")})
    assert "demo" in index["entries"]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("mutual", "trust"),
    [
        pytest.param(False, "ca", id="private-ca"),
        pytest.param(False, "insecure", id="insecure"),
        pytest.param(True, "ca", id="client-certificate"),
    ],
)
async def test_a_registry_over_tls_is_reached_with_its_ca_or_insecurely(
    helm_engine: HelmEngine,
    registry_factory: Callable[..., RegistryServer],
    test_ca: TestCA,
    tmp_path: Path,
    mutual: bool,
    trust: str,
) -> None:
    registry = registry_factory(tls=test_ca, require_client_cert=mutual)
    remote = f"oci://{registry.host}/charts"
    auth = (
        RegistryAuth(insecure=True)
        if trust == "insecure"
        else RegistryAuth(ca_pem=test_ca.ca_pem.decode())
    )
    if mutual:
        certificate = {"cert_pem": test_ca.client_cert_pem, "key_pem": test_ca.client_key_pem}
        auth = replace(auth, **{k: v.decode() for k, v in certificate.items()})
    (archive,) = versions(tmp_path, "1.0.0")
    await push_oci(archive, remote, auth=auth, engine=helm_engine)
    assert await helm_engine.oci_tags(f"{remote}/demo", auth=auth) == ["1.0.0"]
    assert await helm_engine.oci_pull(f"{remote}/demo", "1.0.0", auth=auth)
    with pytest.raises(RegistryError, match="certificate"):
        await helm_engine.oci_tags(f"{remote}/demo")
