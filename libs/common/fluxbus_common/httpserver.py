"""The /healthz, /readyz and /metrics endpoints every service serves (aiohttp),
and `serve_app`, which every listening server of a service goes through so an
address it cannot listen on is a `ListenError` naming the setting to change."""

from __future__ import annotations

import os
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from fluxbus_common.metrics import Metrics

HTTP_ADDR_ENV = "FLUXBUS_HTTP_ADDR"
"""The setting that places a service's /healthz /readyz /metrics server."""


class ListenError(Exception):
    """A server cannot listen on its address (in use, not an address of this
    host, a privileged port): `str()` is one line naming the setting to change."""

    def __init__(self, addr: str, setting: str, reason: str) -> None:
        self.addr = addr
        self.setting = setting
        self.reason = reason
        hint = f"; set {setting} to a free host:port" if setting else ""
        super().__init__(f"cannot listen on {addr}: {reason}{hint}")

    @classmethod
    def from_os_error(cls, addr: str, setting: str, error: OSError) -> ListenError:
        """The error for what bind/listen raised (its errno's text, e.g.
        "address already in use", without asyncio's wording around it)."""
        reason = os.strerror(error.errno) if error.errno else str(error)
        return cls(addr, setting, reason.lower())


async def start_http(
    addr: str, metrics: Metrics, ready: Callable[[], bool], *, setting: str = HTTP_ADDR_ENV
) -> tuple[web.AppRunner, int]:
    """Serve the endpoints on `host:port` (port 0 = any) and return (runner, port).

    Raises ListenError (naming `setting`) when `addr` cannot be listened on.

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
    return await serve_app(app, addr, setting=setting)


async def serve_app(
    app: web.Application, addr: str, *, setting: str = ""
) -> tuple[web.AppRunner, int]:
    """Serve an aiohttp application on `host:port` (port 0 = any; no host = every
    interface) without an access log (paths may carry secrets, e.g. webhook paths).

    Returns (runner, bound port); `await runner.cleanup()` stops it. Raises
    ListenError, naming `setting` (the variable that holds `addr`), when the
    address is in use or cannot be listened on.
    """
    host, _, port = addr.rpartition(":")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host or "0.0.0.0", int(port or 0))
        await site.start()
    except OSError as e:
        await runner.cleanup()
        raise ListenError.from_os_error(addr, setting, e) from e
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
