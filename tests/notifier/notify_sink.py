"""A real aiohttp webhook endpoint standing in for a generic-webhook receiver in
the delivery tests: it records every request (headers and JSON body) and can
fail on demand (the next N requests, or every request, with a given status)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from fluxbus_common.testing.plugin import free_port


@dataclass
class Received:
    """One request that reached the sink."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def event_id(self) -> str:
        return self.headers.get("X-Fluxbus-Event-Id", "")

    @property
    def message(self) -> str:
        return str(self.body.get("message", ""))


@dataclass
class Sink:
    """What the endpoint received and how it answers."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    """Requests it accepted (2xx)."""
    refused: int = 0
    """Requests it answered with an error."""
    fail_next: int = 0
    fail_always: bool = False
    fail_status: int = 503
    arrived: int = 0
    """Every request that reached it, answered or not."""
    hold: asyncio.Event | None = None
    """When set, requests wait for this event before they are answered."""

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def messages(self, path: str | None = None) -> list[str]:
        return [r.message for r in self.received if path is None or r.path == path]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.arrived += 1
        if self.hold is not None:
            await self.hold.wait()
        if self.fail_always or self.fail_next > 0:
            self.fail_next = max(0, self.fail_next - 1)
            self.refused += 1
            return web.Response(status=self.fail_status, text="unavailable")
        self.received.append(Received(request.path, dict(request.headers), json.loads(body)))
        return web.Response(status=200, text="ok")


@contextlib.asynccontextmanager
async def running_sink() -> AsyncIterator[Sink]:
    """Serve a Sink on 127.0.0.1 (any path) for the duration of the block."""
    sink = Sink(port=free_port())
    app = web.Application()
    app.router.add_post("/{tail:.*}", sink._handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", sink.port)
    await site.start()
    try:
        yield sink
    finally:
        await runner.cleanup()
