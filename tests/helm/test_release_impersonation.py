"""`spec.serviceAccountName`: Helm's requests for the HelmRelease impersonate
its service account, as Flux does. A recording proxy in front of kubelite
shows the `Impersonate-User` header (kubelite itself does not authorize)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from helmrelease_helpers import chart, helmrelease, running

from fluxbus_common.bus import Bus

HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


@contextlib.asynccontextmanager
async def recording_proxy(kube: Any, tmp: Path) -> AsyncIterator[tuple[list[str | None], str]]:
    """A plain-HTTP proxy to kubelite recording each request's Impersonate-User;
    yields (the recorded users, a kubeconfig pointing at the proxy)."""
    users: list[str | None] = []
    client = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=kube.ssl))

    async def handle(request: web.Request) -> web.Response:
        users.append(request.headers.get("Impersonate-User"))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        headers.update(kube.headers)  # the bearer token (the proxy stands for the client)
        async with client.request(
            request.method, kube.url + request.path_qs, data=await request.read(), headers=headers
        ) as r:
            return web.Response(
                status=r.status,
                body=await r.read(),
                headers={"Content-Type": r.headers.get("Content-Type", "application/json")},
            )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    config = yaml.safe_load(await asyncio.to_thread(Path(kube.kubeconfig).read_text))
    for c in config["clusters"]:
        c["cluster"] = {"server": f"http://127.0.0.1:{port}"}
    path = tmp / "proxy-kubeconfig"
    await asyncio.to_thread(path.write_text, yaml.safe_dump(config))
    try:
        yield users, str(path)
    finally:
        await runner.cleanup()
        await client.close()


class ProxiedKube:
    """The kubelite handle, but the service's kubeconfig points at the proxy."""

    def __init__(self, kube: Any, kubeconfig: str) -> None:
        self._kube = kube
        self.kubeconfig = kubeconfig

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kube, name)


async def test_helm_impersonates_the_service_account_of_the_helmrelease(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with (
        recording_proxy(kubelite, tmp_path) as (users, kubeconfig),
        running(bus, ProxiedKube(kubelite, kubeconfig), tmp_path / "w") as env,
    ):
        spec = {"serviceAccountName": "deployer", "install": {"disableWait": True}}
        key = await env.apply(helmrelease("web", **spec))
        await env.publish_chart("default", "default-web", chart())
        await env.ready(key)

    assert "system:serviceaccount:default:deployer" in users
    assert env.get("configmap", "web-settings") is not None
