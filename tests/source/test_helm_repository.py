"""HelmRepository end to end: a real chart repository over HTTP(S) (indexed with Helm's
SDK), a real nats-server, the controller runtime and the index artifact in the object store."""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from helm_helpers import (
    apply,
    artifact_bytes,
    condition,
    helm_sources,
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
from fluxbus_git.testing import HTTPProxy
from fluxbus_git.testing.tls import TestCA
from fluxbus_helmsdk.testing import ChartRepoFactory, make_chart


async def test_an_index_becomes_an_artifact_whose_revision_is_its_digest(
    bus: Bus, chart_repo_factory: ChartRepoFactory, tmp_path: Path
):
    repo = await chart_repo_factory()
    await repo.add(make_chart(tmp_path / "src", "web", "1.0.0"))
    async with helm_sources(bus, tmp_path):
        await apply(bus, helmrepository("charts", repo.url))
        st = await wait_ready(bus, "HelmRepository", "charts")
        revision = st["artifact"]["revision"]
        assert revision.startswith("sha256:") and st["artifact"]["digest"] == revision
        assert condition(st, "Ready")["message"] == f"stored artifact: revision '{revision}'"
        assert condition(st, "ArtifactInStorage")["status"] == "True"
        assert st["url"] == st["artifact"]["url"]
        assert st["artifact"]["path"].startswith("helmrepository/flux-system/charts/index-")
        index = json.loads(await artifact_bytes(bus, st, tmp_path))
        assert [v["version"] for v in index["entries"]["web"]] == ["1.0.0"]
        events = await bus.recent_events()
        assert any(
            e.reason == "NewArtifact" and "stored fetched index of size" in e.message
            for e in events
        )


async def test_an_unchanged_index_keeps_its_artifact_and_a_changed_one_replaces_it(
    bus: Bus, chart_repo_factory: ChartRepoFactory, tmp_path: Path
):
    repo = await chart_repo_factory()
    await repo.add(make_chart(tmp_path / "src", "web", "1.0.0"))
    async with helm_sources(bus, tmp_path):
        doc = helmrepository("charts", repo.url)
        await apply(bus, doc)
        first = await wait_ready(bus, "HelmRepository", "charts")
        # a reconcile request with the same index: same artifact, not stored again
        doc["metadata"]["annotations"] = {keys.RECONCILE_REQUESTED_AT: "1"}
        await apply(bus, doc)

        async def handled() -> dict | None:
            st = await status(bus, "HelmRepository", "charts")
            return st if st.get("lastHandledReconcileAt") == "1" else None

        again = await wait_for(handled, message="reconcile request handled")
        assert again["artifact"] == first["artifact"]

        await repo.add(make_chart(tmp_path / "src2", "web", "1.1.0"))
        doc["metadata"]["annotations"] = {keys.RECONCILE_REQUESTED_AT: "2"}
        await apply(bus, doc)

        async def changed() -> dict | None:
            st = await status(bus, "HelmRepository", "charts")
            rev = (st.get("artifact") or {}).get("revision")
            return st if rev and rev != first["artifact"]["revision"] else None

        st = await wait_for(changed, message="a new index revision")
        index = json.loads(await artifact_bytes(bus, st, tmp_path))
        assert [v["version"] for v in index["entries"]["web"]] == ["1.1.0", "1.0.0"]


async def test_basic_auth_from_the_secret_opens_a_protected_repository(
    bus: Bus, chart_repo_factory: ChartRepoFactory, tmp_path: Path
):
    repo = await chart_repo_factory(basic_auth=("flux", "s3cret-pass"))
    await repo.add(make_chart(tmp_path / "src", "web", "1.0.0"))
    async with helm_sources(bus, tmp_path):
        await put_secret(bus, secret("good", username="flux", password="s3cret-pass"))
        await apply(bus, helmrepository("charts", repo.url, secretRef={"name": "good"}))
        await wait_ready(bus, "HelmRepository", "charts")


async def test_a_wrong_password_fails_without_the_password_in_status_or_events(
    bus: Bus, chart_repo_factory: ChartRepoFactory, tmp_path: Path
):
    repo = await chart_repo_factory(basic_auth=("flux", "s3cret-pass"))
    async with helm_sources(bus, tmp_path):
        await put_secret(bus, secret("bad", username="flux", password="wrong-pa55"))
        await apply(bus, helmrepository("charts", repo.url, secretRef={"name": "bad"}))
        st = await wait_failing(bus, "HelmRepository", "charts", "401")
        fetch = condition(st, "FetchFailed")
        assert fetch is not None and fetch["status"] == "True"
        assert fetch["message"].startswith("failed to fetch Helm repository index: ")
        events = await bus.recent_events()
        everything = json.dumps(st) + " ".join(e.message for e in events)
        assert "wrong-pa55" not in everything and "s3cret-pass" not in everything


async def test_a_missing_secret_is_an_authentication_failure(
    bus: Bus, chart_repo_factory: ChartRepoFactory, tmp_path: Path
):
    repo = await chart_repo_factory()
    async with helm_sources(bus, tmp_path):
        await apply(bus, helmrepository("charts", repo.url, secretRef={"name": "absent"}))
        st = await wait_failing(bus, "HelmRepository", "charts", "absent")
        assert condition(st, "Ready")["reason"] == "AuthenticationFailed"


async def test_tls_with_the_ca_from_cert_secret_ref(
    bus: Bus, chart_repo_factory: ChartRepoFactory, tmp_path: Path
):
    repo = await chart_repo_factory(tls=True)
    await repo.add(make_chart(tmp_path / "src", "web", "1.0.0"))
    assert repo.ca_pem is not None
    async with helm_sources(bus, tmp_path):
        await apply(bus, helmrepository("untrusted", repo.url))
        await wait_failing(bus, "HelmRepository", "untrusted", "TLS")
        await put_secret(bus, secret("tls", **{"ca.crt": repo.ca_pem.decode()}))
        await apply(bus, helmrepository("charts", repo.url, certSecretRef={"name": "tls"}))
        await wait_ready(bus, "HelmRepository", "charts")


async def test_a_broken_index_keeps_the_previous_artifact(
    bus: Bus, chart_repo_factory: ChartRepoFactory, tmp_path: Path
):
    repo = await chart_repo_factory()
    await repo.add(make_chart(tmp_path / "src", "web", "1.0.0"))
    async with helm_sources(bus, tmp_path):
        doc = helmrepository("charts", repo.url)
        await apply(bus, doc)
        good = await wait_ready(bus, "HelmRepository", "charts")
        (repo.dir / "index.yaml").write_text("entries: {}\n")  # no apiVersion
        doc["metadata"]["annotations"] = {keys.RECONCILE_REQUESTED_AT: "broken"}
        await apply(bus, doc)
        st = await wait_failing(bus, "HelmRepository", "charts", "no API version specified")
        assert condition(st, "Ready")["reason"] == "IndexationFailed"
        assert st["artifact"] == good["artifact"]


async def test_an_oci_repository_is_a_static_object_without_status(bus: Bus, tmp_path: Path):
    async with helm_sources(bus, tmp_path):
        await apply(bus, helmrepository("oci", "oci://127.0.0.1:1/charts", type="oci"))

        async def written() -> dict | None:
            entry = await bus.get_status("helmrepository.flux-system.oci")
            return entry.value if entry is not None else None

        st = await wait_for(written, message="OCI HelmRepository status written")
        assert not st.get("conditions") and "artifact" not in st


async def test_an_oci_url_with_the_default_type_stalls(bus: Bus, tmp_path: Path):
    async with helm_sources(bus, tmp_path):
        await apply(bus, helmrepository("bad", "oci://127.0.0.1:1/charts"))
        st = await wait_failing(bus, "HelmRepository", "bad", "'oci' URL scheme cannot be used")
        assert condition(st, "Stalled")["reason"] == "URLInvalid"


@contextlib.asynccontextmanager
async def mtls_server(directory: Path, ca: TestCA) -> AsyncIterator[str]:
    """Serve `directory` over https, requiring a client certificate signed by `ca`."""
    app = web.Application()
    app.router.add_static("/", directory)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca.path("ca.crt"))
    context.load_cert_chain(ca.path("server.crt"), ca.path("server.key"))
    context.verify_mode = ssl.CERT_REQUIRED
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        yield f"https://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_mutual_tls_presents_the_client_certificate_of_cert_secret_ref(
    bus: Bus, chart_repo_factory: ChartRepoFactory, test_ca: TestCA, tmp_path: Path
):
    repo = await chart_repo_factory()
    await repo.add(make_chart(tmp_path / "src", "web", "1.0.0"))
    async with mtls_server(repo.dir, test_ca) as url, helm_sources(bus, tmp_path):
        ca_only = {"ca.crt": test_ca.ca_pem.decode()}
        await put_secret(bus, secret("ca-only", **ca_only))
        await apply(bus, helmrepository("anonymous", url, certSecretRef={"name": "ca-only"}))
        await wait_failing(bus, "HelmRepository", "anonymous", "failed to fetch")
        full = {
            **ca_only,
            "tls.crt": test_ca.client_cert_pem.decode(),
            "tls.key": test_ca.client_key_pem.decode(),
        }
        await put_secret(bus, secret("mtls", **full))
        await apply(bus, helmrepository("charts", url, certSecretRef={"name": "mtls"}))
        await wait_ready(bus, "HelmRepository", "charts")
        # the deprecated keys of spec.secretRef still work, as in Flux
        legacy = {
            "caFile": test_ca.ca_pem.decode(),
            "certFile": test_ca.client_cert_pem.decode(),
            "keyFile": test_ca.client_key_pem.decode(),
        }
        await put_secret(bus, secret("legacy", **legacy))
        await apply(bus, helmrepository("legacy", url, secretRef={"name": "legacy"}))
        await wait_ready(bus, "HelmRepository", "legacy")


async def test_the_index_is_fetched_through_the_proxy_of_the_environment(
    bus: Bus,
    chart_repo_factory: ChartRepoFactory,
    http_proxy: HTTPProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    repo = await chart_repo_factory()
    await repo.add(make_chart(tmp_path / "src", "web", "1.0.0"))
    assert http_proxy.auth is not None
    host = http_proxy.address.split("://", 1)[-1]
    user, password = http_proxy.auth.username, http_proxy.auth.password
    monkeypatch.setenv("HTTP_PROXY", f"http://{user}:{password}@{host}")
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    async with helm_sources(bus, tmp_path):
        await apply(bus, helmrepository("charts", repo.url))
        await wait_ready(bus, "HelmRepository", "charts")
    assert http_proxy.requests >= 1
