"""`KubeliteServer`: kubelite's HTTP server (aiohttp), embeddable, with its start and stop.

Wires the pieces: `discovery` (/version, /api, /apis, /openapi), `handlers`
(every verb on /api/v1/... and /apis/<g>/<v>/...), `watch` (streams), the
`controllers`, health endpoints and Prometheus /metrics; kubelite.md specifies
the behaviour.

    async with KubeliteServer(port=0) as srv:
        print(srv.url, srv.kubeconfig_path)
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import yaml
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from .controllers import Controllers, SimulationConfig
from .discovery import Discovery
from .handlers import RestHandlers
from .resources import CRD_KEY, NS_KEY
from .store import DEFAULT_HISTORY, Persistence, Store
from .verbs import Kubelite, Options
from .watch import DEFAULT_BOOKMARK_INTERVAL, Watches

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class _Metrics:
    """Prometheus metrics of one server (several servers may run in one process: tests)."""

    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "kubelite_requests",
            "API requests by verb and code",
            ["verb", "code"],
            registry=self.registry,
        )
        Gauge("kubelite_objects", "Objects stored", registry=self.registry).set_function(
            store.count
        )
        Gauge("kubelite_watches", "Open watches", registry=self.registry).set_function(
            lambda: len(store.watchers)
        )
        Gauge(
            "kubelite_resource_version", "Current resourceVersion", registry=self.registry
        ).set_function(lambda: store.rv)

    async def serve(self, request: web.Request) -> web.Response:
        resp = web.Response(body=generate_latest(self.registry))
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def write_kubeconfig(path: str | os.PathLike[str], url: str, context: str = "kubelite") -> None:
    """Write a kubeconfig pointing at url (plain HTTP, any token)."""
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": url}}],
        "users": [{"name": context, "user": {"token": "kubelite"}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": context, "user": context, "namespace": "default"},
            }
        ],
        "current-context": context,
        "preferences": {},
    }
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(yaml.safe_dump(cfg, sort_keys=False))
    os.replace(tmp, p)


class KubeliteServer:
    """kubelite in-process: `async with KubeliteServer(port=0) as srv: srv.url`.

    Arguments: host/port (0 picks a free port), kubeconfig (path written once
    listening), state (SQLite file for persistence), simulate (workload
    controllers), simulation (a SimulationConfig), history (watch events kept
    for resuming watches; older resourceVersions get 410), bookmark_interval.

    Once started: `.url`, `.port`, `.kubeconfig_path`, `.store` (the objects),
    `.kube` (the API operations). Touch `.store` only from the server's loop.
    """

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        kubeconfig: str | os.PathLike[str] | None = None,
        state: str | os.PathLike[str] | None = None,
        simulate: bool = True,
        simulation: SimulationConfig | None = None,
        history: int = DEFAULT_HISTORY,
        bookmark_interval: float = DEFAULT_BOOKMARK_INTERVAL,
    ) -> None:
        self.host = host
        self.port = port
        self.kubeconfig_path = str(kubeconfig) if kubeconfig else None
        self.persistence = Persistence(str(state)) if state else None
        self.store = Store(history=history, persistence=self.persistence)
        self.kube = Kubelite(self.store)
        self.simulation = simulation or SimulationConfig(enabled=simulate)
        if not simulate:
            self.simulation.enabled = False
        self.controllers = Controllers(self.kube, self.simulation)
        self.metrics = _Metrics(self.store)
        self.discovery = Discovery(self.kube.registry)
        self.watches = Watches(self.store, asyncio.Event(), bookmark_interval)
        self.handlers = RestHandlers(
            self.kube, self.watches, self.metrics.requests, self.controllers
        )
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> KubeliteServer:
        loaded = self.store.load()
        for key, obj in loaded:
            if key == CRD_KEY:
                self.kube.registry.sync_crd(obj, obj["metadata"]["name"])
        if self.persistence is not None:
            self.persistence.start()
        for ns in DEFAULT_NAMESPACES:
            if self.store.get(NS_KEY, "", ns) is None:
                rt = self.kube.registry.lookup("", "v1", "namespaces")
                assert rt is not None
                self.kube.create(rt, "", {"metadata": {"name": ns}}, Options(manager="kubelite"))
        self.controllers.start()
        # open watches are told to end on stop; one second is plenty for them to go
        self._runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        # the bound port (port 0 picks one): sockname is (host, port[, flowinfo, scope])
        bound: int = self._runner.addresses[0][1]
        self.port = bound
        self.url = f"http://{self.host}:{self.port}"
        self.discovery.address = f"{self.host}:{self.port}"
        if self.kubeconfig_path:
            write_kubeconfig(self.kubeconfig_path, self.url)
        return self

    def _app(self) -> web.Application:
        # large enough for any manifest a user applies (the API server's own limit is 3 MiB
        # per object, but lists of objects may be posted to deletecollection and the like)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/metrics", self.metrics.serve)
        app.router.add_get("/healthz", _ok)
        app.router.add_get("/readyz", _ok)
        app.router.add_get("/livez", _ok)
        self.discovery.add_routes(app)
        app.router.add_route("*", "/api/{path:.*}", self.handlers.dispatch)
        app.router.add_route("*", "/apis/{path:.*}", self.handlers.dispatch)
        return app

    async def stop(self) -> None:
        self.watches.stopping.set()
        self.store.close_watchers()
        await self.controllers.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.persistence is not None:
            await asyncio.to_thread(self.persistence.close)

    async def __aenter__(self) -> KubeliteServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


__all__ = ["KubeliteServer", "write_kubeconfig"]
