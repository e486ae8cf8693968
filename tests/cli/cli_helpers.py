"""Helpers of the CLI tests: how `fluxbus` runs (in-process or as a subprocess)
and a tiny stand-in controller that answers reconcile requests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fluxbus_common import keys, liveness
from fluxbus_common.bus import Bus
from fluxbus_common.ports import RevisionConflict

MANIFESTS = Path(__file__).parent / "manifests"
FLUXBUS = Path(sys.executable).parent / "fluxbus"


@dataclass(frozen=True)
class Ran:
    """What one `fluxbus` invocation printed and returned."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


Cli = Callable[..., Awaitable[Ran]]


async def run_fluxbus(*args: str, url: str, input: str | None = None, timeout: float = 60) -> Ran:
    """Run the installed `fluxbus` console script with FLUXBUS_NATS_URL=url."""
    env = {**os.environ, "FLUXBUS_NATS_URL": url}
    proc = await asyncio.create_subprocess_exec(
        str(FLUXBUS),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate(None if input is None else input.encode())
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


def ready_status(
    doc: dict[str, Any], handled: str | None, ready: bool, message: str, revision: str
) -> dict[str, Any]:
    """The status a controller writes after one reconcile."""
    generation = int(doc["metadata"].get("generation", 1))
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "reason": "ReconciliationSucceeded" if ready else "BuildFailed",
                "message": message,
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "observedGeneration": generation,
            }
        ],
    }
    if doc["kind"] == "GitRepository":
        status["artifact"] = {
            "path": "gitrepository/x.tar.gz",
            "url": "http://x",
            "revision": revision,
        }
    else:
        status["lastAppliedRevision"] = revision
    if handled is not None:
        status["lastHandledReconcileAt"] = handled
    return status


@dataclass
class FakeController:
    """Stands in for a service: answers every reconcile request of a kind with
    `ready`/`message`/`revision`, as the runtime does (lastHandledReconcileAt)."""

    ready: bool = True
    message: str = "Applied revision: main@sha1:4b2c5e0d"
    revision: str = "main@sha1:4b2c5e0d"
    handled: list[str] | None = None

    def __post_init__(self) -> None:
        self.handled = []

    async def run(self, bus: Bus, kind: str) -> None:
        async for change in bus.watch_objects(kind):
            if change.value is None:
                continue
            annotations = change.value["metadata"].get("annotations") or {}
            requested = annotations.get(keys.RECONCILE_REQUESTED_AT)
            if requested is None or change.value.get("spec", {}).get("suspend"):
                continue
            status = ready_status(change.value, requested, self.ready, self.message, self.revision)
            while True:
                current = await bus.get_status(change.key)
                if current is not None and current.value.get("lastHandledReconcileAt") == requested:
                    break
                try:
                    await bus.put_status(
                        change.key, status, None if current is None else current.revision
                    )
                except RevisionConflict:
                    continue
                assert self.handled is not None
                self.handled.append(f"{change.key}@{requested}")
                break


@contextlib.asynccontextmanager
async def heartbeat(bus: Bus, *kinds: str, ttl: float = 600.0) -> AsyncIterator[None]:
    """Publish, while the block runs, the heartbeat a service reconciling `kinds` writes."""
    services = {liveness.controller_of(k) or "stand-in" for k in kinds}
    now = liveness.rfc3339(datetime.now(UTC))
    for service in services:
        owned = tuple(
            k.lower() for k in kinds if (liveness.controller_of(k) or "stand-in") == service
        )
        await bus.put_heartbeat(
            liveness.Heartbeat(
                service=service,
                instance="stand-in",
                kinds=owned,
                started=now,
                last_seen=now,
                ttl=ttl,
                ready=True,
            )
        )
    try:
        yield
    finally:
        for service in services:
            await bus.remove_heartbeat(service, "stand-in")


@contextlib.asynccontextmanager
async def controller(
    bus: Bus, *kinds: str, ready: bool = True, message: str | None = None
) -> AsyncIterator[FakeController]:
    """Run a FakeController for `kinds` while the block runs."""
    fake = FakeController(ready=ready)
    if message is not None:
        fake.message = message
    async with heartbeat(bus, *kinds), asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(fake.run(bus, kind), name=f"fake-{kind}") for kind in kinds]
        try:
            yield fake
        finally:
            for task in tasks:
                task.cancel()
