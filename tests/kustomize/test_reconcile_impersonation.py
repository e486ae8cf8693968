"""`spec.serviceAccountName`: every request made for the Kustomization
impersonates its service account, as Flux does. A recording proxy in front of
kubelite shows the `Impersonate-User` header (kubelite itself does not
authorize)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from reconcile_helpers import configmap, kustomization, manifests, running

from fluxbus_common.bus import Bus

HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


class RecordingProxy:
    """Forwards plain (non-streaming) requests to kubelite and records them."""

    def __init__(self, upstream: str, upstream_ssl: ssl.SSLContext) -> None:
        self.upstream = upstream
        self.upstream_ssl = upstream_ssl
        self.requests: list[tuple[str, str, str | None]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(
            (request.method, request.path, request.headers.get("Impersonate-User"))
        )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.upstream_ssl)) as http,
            http.request(
                request.method,
                self.upstream + request.path_qs,
                data=await request.read(),
                headers=headers,
            ) as r,
        ):
            body = await r.read()
            return web.Response(
                status=r.status, body=body, content_type=r.content_type or "application/json"
            )


@pytest.fixture
async def proxy(kubelite: Any, tmp_path: Path) -> AsyncIterator[tuple[RecordingProxy, str]]:
    p = RecordingProxy(kubelite.url, kubelite.ssl)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", p.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    p.url = f"http://127.0.0.1:{port}"
    config = yaml.safe_load(await asyncio.to_thread(Path(kubelite.kubeconfig).read_text))
    for c in config["clusters"]:
        c["cluster"]["server"] = p.url
    kubeconfig = tmp_path / "proxy-kubeconfig"
    await asyncio.to_thread(kubeconfig.write_text, yaml.safe_dump(config))
    try:
        yield p, str(kubeconfig)
    finally:
        await runner.cleanup()


class ProxiedKube:
    """The kubelite handle, but the service's kubeconfig points at the proxy."""

    def __init__(self, kube: Any, kubeconfig: str) -> None:
        self._kube = kube
        self.kubeconfig = kubeconfig

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kube, name)


async def test_service_account_is_impersonated_for_apply_and_prune(
    bus: Bus, kubelite: Any, tmp_path: Path, proxy: tuple[RecordingProxy, str]
):
    recorder, kubeconfig = proxy
    async with running(bus, ProxiedKube(kubelite, kubeconfig), tmp_path / "env") as env:
        rev = await env.publish({"a.yaml": manifests(configmap("a", "default"))})
        key = await env.apply(kustomization("app", serviceAccountName="deployer"))
        await env.ready(key, rev)
        rev2 = await env.publish({"b.yaml": manifests(configmap("b", "default"))})
        await env.ready(key, rev2)
        assert env.get("configmap", "a") is None
        writes = [(m, p, u) for m, p, u in recorder.requests if m in ("PATCH", "DELETE")]
        assert {(m, p) for m, p, _ in writes} >= {
            ("PATCH", "/api/v1/namespaces/default/configmaps/a"),
            ("PATCH", "/api/v1/namespaces/default/configmaps/b"),
            ("DELETE", "/api/v1/namespaces/default/configmaps/a"),
        }
        assert {u for _, _, u in writes} == {"system:serviceaccount:default:deployer"}


async def test_no_service_account_means_no_impersonation(
    bus: Bus, kubelite: Any, tmp_path: Path, proxy: tuple[RecordingProxy, str]
):
    recorder, kubeconfig = proxy
    async with running(bus, ProxiedKube(kubelite, kubeconfig), tmp_path / "env") as env:
        rev = await env.publish({"a.yaml": manifests(configmap("a", "default"))})
        key = await env.apply(kustomization("app"))
        await env.ready(key, rev)
        assert recorder.requests
        assert {u for _, _, u in recorder.requests} == {None}
