"""`KubeliteServer`: kubelite's HTTP server (aiohttp), embeddable, with its start and stop.

Wires the pieces: `discovery` (/version, /api, /apis, /openapi), `handlers`
(every verb on /api/v1/... and /apis/<g>/<v>/...), `watch` (streams), the
`controllers`, health endpoints and Prometheus /metrics; kubelite.md specifies
the behaviour.

It serves HTTPS (`tls`: kubectl sends a bearer token only over TLS). Every
request but /healthz /readyz /livez must carry the server's bearer token
(`Authorization: Bearer <token>`), the one written into the kubeconfig with the
CA; others get 401 Unauthorized, as from an API server without anonymous access.

    async with KubeliteServer(port=0) as srv:
        print(srv.url, srv.kubeconfig_path, srv.headers)
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import secrets
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from fluxbus_common.httpserver import ListenError

from .controllers import Controllers, SimulationConfig
from .discovery import Discovery
from .errors import ApiError
from .handlers import RestHandlers
from .httputil import error_response
from .resources import CRD_KEY, NS_KEY
from .store import DEFAULT_HISTORY, Persistence, Store
from .tls import ServerTLS, load_or_issue
from .verbs import Kubelite, Options
from .watch import DEFAULT_BOOKMARK_INTERVAL, Watches

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/livez"})
"""Answered without a token (probes; an API server lets anyone read them too)."""
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})
"""Hosts meaning "every interface": the server's own URL then names 127.0.0.1."""
TOKEN_BYTES = 32
"""Random bytes of a generated token (256 bits, as a service account token's key)."""


def new_token() -> str:
    """A fresh random bearer token (URL-safe text)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def _authenticated(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def _require_token(token: str) -> Middleware:
    """Middleware: 401 (a Status, as kube-apiserver answers) without the token."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS or _authenticated(request, token):
            return await handler(request)
        return error_response(ApiError(401, "Unauthorized", "Unauthorized"))

    return middleware


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


def write_kubeconfig(
    path: str | os.PathLike[str],
    url: str,
    token: str,
    ca_data: str | None = None,
    context: str = "kubelite",
) -> None:
    """Write a kubeconfig pointing at url with the bearer token and the CA
    (base64 PEM, `certificate-authority-data`), readable by its owner only
    (mode 600: it holds the token)."""
    cluster: dict[str, str] = {"server": url}
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": cluster}],
        "users": [{"name": context, "user": {"token": token}}],
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
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a leftover may have another mode; O_EXCL below creates it 600
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(yaml.safe_dump(cfg, sort_keys=False))
    os.replace(tmp, p)


def kubeconfig_token(path: str | os.PathLike[str], context: str = "kubelite") -> str | None:
    """The token of `context`'s user in a kubeconfig kubelite wrote, or None when
    the file is missing or is not one of kubelite's."""
    try:
        cfg = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(cfg, dict):
        return None
    for user in cfg.get("users") or []:
        if isinstance(user, dict) and user.get("name") == context:
            token = (user.get("user") or {}).get("token")
            return token if isinstance(token, str) and token else None
    return None


class KubeliteServer:
    """kubelite in-process: `async with KubeliteServer(port=0) as srv: srv.url`.

    Arguments: host/port (0 picks a free port; host 127.0.0.1 unless told
    otherwise), kubeconfig (path written once listening), state (SQLite file for
    persistence), simulate (workload controllers), simulation (a
    SimulationConfig), history (watch events kept for resuming watches; older
    resourceVersions get 410), bookmark_interval, token (the bearer token every
    API request must carry; a random one when None), server_url (the https URL
    written into the kubeconfig when clients reach the server by another name,
    e.g. a compose service's; its host goes into the certificate; default the
    listening URL), tls (a ServerTLS; when None one is loaded from `tls_file`
    if it still fits, else issued, and saved to `tls_file` when given).

    Once started: `.url` (https), `.port`, `.token`, `.headers` (the
    Authorization header for raw HTTP clients), `.tls`, `.client_ssl()` (an
    SSLContext trusting the server), `.kubeconfig_path`, `.store` (the objects),
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
        token: str | None = None,
        server_url: str | None = None,
        tls: ServerTLS | None = None,
        tls_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token or new_token()
        self.server_url = server_url
        self._tls = tls
        self.tls_file = tls_file
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
        """Load the state, start the controllers, listen and write the kubeconfig.

        Raises ListenError when host:port cannot be listened on (in use...).
        """
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
        tls = self.tls
        site = web.TCPSite(
            self._runner,
            self.host,
            self.port,
            reuse_address=True,
            ssl_context=await asyncio.to_thread(tls.server_context),
        )
        try:
            await site.start()
        except OSError as e:
            await self.stop()
            raise ListenError.from_os_error(f"{self.host}:{self.port}", "--port", e) from e
        # the bound port (port 0 picks one): sockname is (host, port[, flowinfo, scope])
        bound: int = self._runner.addresses[0][1]
        self.port = bound
        local = "127.0.0.1" if self.host in WILDCARD_HOSTS else self.host
        self.url = f"https://{local}:{self.port}"
        self.discovery.address = f"{self.host}:{self.port}"
        if self.kubeconfig_path:
            write_kubeconfig(
                self.kubeconfig_path, self.server_url or self.url, self.token, tls.ca_data
            )
        return self

    @property
    def tls(self) -> ServerTLS:
        """The server's TLS material (issued on first use when none was given)."""
        if self._tls is None:
            names = [urlsplit(self.server_url).hostname or ""] if self.server_url else []
            if self.host not in WILDCARD_HOSTS:
                names.append(self.host)
            self._tls = load_or_issue(self.tls_file, [n for n in names if n])
        return self._tls

    def client_ssl(self) -> ssl.SSLContext:
        """An SSLContext for clients: trusts this server's CA only."""
        return self.tls.client_context()

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header a raw HTTP client sends."""
        return {"Authorization": f"Bearer {self.token}"}

    def _app(self) -> web.Application:
        # large enough for any manifest a user applies (the API server's own limit is 3 MiB
        # per object, but lists of objects may be posted to deletecollection and the like)
        app = web.Application(
            client_max_size=64 * 1024 * 1024, middlewares=[_require_token(self.token)]
        )
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
            server = self._runner.server
            transports = [h.transport for h in server.connections] if server else []
            await self._runner.cleanup()
            self._runner = None
            # a keep-alive client that never answers TLS close_notify (Go's idle
            # connections) would leave its socket open past the loop: cut it
            for transport in transports:
                if transport is not None:
                    transport.abort()
        if self.persistence is not None:
            await asyncio.to_thread(self.persistence.close)

    async def __aenter__(self) -> KubeliteServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


__all__ = ["KubeliteServer", "kubeconfig_token", "new_token", "write_kubeconfig"]
