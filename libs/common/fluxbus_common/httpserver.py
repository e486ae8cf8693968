"""The /healthz, /readyz and /metrics endpoints every service serves (aiohttp)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from fluxbus_common.metrics import Metrics


async def start_http(
    addr: str, metrics: Metrics, ready: Callable[[], bool]
) -> tuple[web.AppRunner, int]:
    """Serve the endpoints on `host:port` (port 0 = any) and return (runner, port).

    /healthz answers 200 while the process runs; /readyz 200 only when
    `ready()` is true (connected to NATS, initial lists read), else 503.
    """

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        ok = ready()
        return web.Response(text="ok" if ok else "not ready", status=200 if ok else 503)

    async def metrics_handler(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes(
        [
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
            web.get("/metrics", metrics_handler),
        ]
    )
    return await serve_app(app, addr)


async def serve_app(app: web.Application, addr: str) -> tuple[web.AppRunner, int]:
    """Serve an aiohttp application on `host:port` (port 0 = any; no host = every
    interface) without an access log (paths may carry secrets, e.g. webhook paths).

    Returns (runner, bound port); `await runner.cleanup()` stops it.
    """
    host, _, port = addr.rpartition(":")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host or "0.0.0.0", int(port or 0))
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, _bound_port(runner, int(port or 0))


def _bound_port(runner: web.AppRunner, default: int) -> int:
    """The port the OS gave us when asked for port 0."""
    for addr in runner.addresses:
        if isinstance(addr, tuple) and len(addr) >= 2:
            return int(addr[1])
    return default
