"""Local HTTP(S) servers standing in for Slack, Discord, Teams, Google Chat, GitHub,
GitLab, Alertmanager and generic webhooks in tests.

Test support, not production code. An `Endpoint` is a real aiohttp server on
127.0.0.1 (a random port; HTTPS with `server_ssl_context`): it records every
request whole (`Received`: method, path, query, headers, the exact body bytes)
and answers from a script of `Reply`s matched by method and path, falling back
to `200 ok`. A `Reply(stall=True)` holds the request open until the endpoint
stops, for timeout tests without sleeping. `wait_count(n)` waits, without
polling, until n requests arrived; each `Received.at` is its arrival time
(`time.perf_counter()`, for benchmarks).

    async with Endpoint() as hook:
        hook.reply(Reply(status=503), times=1)   # first request fails
        ...
        assert hook.requests[-1].json()["reason"] == "ReconciliationSucceeded"
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

__all__ = ["Endpoint", "Received", "Reply", "server_ssl_context"]


@dataclass(frozen=True)
class Received:
    """One request as the endpoint saw it."""

    method: str
    path: str
    """The path as sent (percent-encoding kept), without the query."""
    query: dict[str, str]
    headers: Mapping[str, str]
    """Case-insensitive, as HTTP headers are."""
    body: bytes
    at: float = 0.0
    """`time.perf_counter()` when the whole body had arrived."""

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class Reply:
    """What to answer. `json_body` wins over `body` and sets the content type."""

    status: int = 200
    body: bytes = b"ok"
    json_body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    stall: bool = False
    """Do not answer until the endpoint stops (the client's timeout must fire)."""


@dataclass
class _Rule:
    reply: Reply
    method: str | None
    path: str | None
    times: int | None


def server_ssl_context(
    cert_file: Path, key_file: Path, client_ca_file: Path | None = None
) -> ssl.SSLContext:
    """A server TLS context; with `client_ca_file` clients must present a certificate it signed."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_file, key_file)
    if client_ca_file is not None:
        ctx.load_verify_locations(cafile=str(client_ca_file))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class Endpoint:
    """A recording, scriptable HTTP(S) server on 127.0.0.1 (see the module docstring)."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context
        self._rules: list[_Rule] = []
        self._runner: web.AppRunner | None = None
        self._release = asyncio.Event()
        self.requests: list[Received] = []
        self._arrived = asyncio.Condition()
        self.port = 0

    @property
    def url(self) -> str:
        """`http(s)://127.0.0.1:<port>` (no trailing slash)."""
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def url_for(self, path: str) -> str:
        """The absolute URL of `path` on this endpoint."""
        return self.url + path

    def reply(
        self,
        reply: Reply,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int | None = None,
    ) -> None:
        """Answer requests matching `method` and `path` (None: any) with `reply`,
        `times` times (None: for ever). Rules are tried in the order given."""
        self._rules.append(_Rule(reply, method, path, times))

    def received(self, method: str | None = None, path: str | None = None) -> list[Received]:
        """The requests seen so far, optionally only those with `method` / `path`."""
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and (path is None or r.path == path)
        ]

    async def wait_count(self, count: int) -> None:
        """Return once at least `count` requests arrived (wrap it in a timeout)."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)

    def _next_reply(self, method: str, path: str) -> Reply:
        for rule in self._rules:
            if rule.method not in (None, method) or rule.path not in (None, path):
                continue
            if rule.times is not None:
                if rule.times <= 0:
                    continue
                rule.times -= 1
            return rule.reply
        return Reply()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        at = time.perf_counter()
        path = request.raw_path.split("?", 1)[0]
        self.requests.append(
            Received(
                method=request.method,
                path=path,
                query=dict(request.query),
                headers=request.headers.copy(),
                body=body,
                at=at,
            )
        )
        async with self._arrived:
            self._arrived.notify_all()
        reply = self._next_reply(request.method, path)
        if reply.stall:
            await self._release.wait()
        if reply.json_body is not None:
            return web.json_response(reply.json_body, status=reply.status, headers=reply.headers)
        return web.Response(body=reply.body, status=reply.status, headers=reply.headers)

    async def start(self) -> Endpoint:
        """Serve on a free port of 127.0.0.1."""
        app = web.Application(client_max_size=8 << 20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self._ssl)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        """Release stalled requests and close the server."""
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Endpoint:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
