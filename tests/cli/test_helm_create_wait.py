"""`fluxbus create helmrelease` waits through the release's first reconcile,
which finds its generated HelmChart without an artifact yet (`SourceNotReady`):
that is shown as waiting for its source, not reported as a failure."""

from __future__ import annotations

import asyncio
import os

from cli_helpers import FLUXBUS, heartbeat, ready_status

from fluxbus_common import keys
from fluxbus_common.bus import Bus
from fluxbus_common.settings import BusSettings

KEY = "helmrelease.apps.web"
NOT_READY = "HelmChart 'apps/apps-web' is not ready: does not have an artifact"


async def put(bus: Bus, status: dict) -> None:
    current = await bus.get_status(KEY)
    await bus.put_status(KEY, status, None if current is None else current.revision)


async def test_create_helmrelease_waits_while_its_chart_has_no_artifact(
    bus: Bus, bus_settings: BusSettings
):
    async with heartbeat(bus, "helmrelease"):
        proc = await asyncio.create_subprocess_exec(
            str(FLUXBUS),
            "create", "helmrelease", "web", "--source", "HelmRepository/charts",
            "--chart", "web", "-n", "apps",
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "FLUXBUS_NATS_URL": bus_settings.url},
        )  # fmt: skip
        assert proc.stderr is not None
        seen: list[str] = []
        try:
            async with asyncio.timeout(30):
                async for change in bus.watch_objects("helmrelease"):
                    ann = ((change.value or {}).get("metadata") or {}).get("annotations") or {}
                    if change.key == KEY and keys.RECONCILE_REQUESTED_AT in ann:
                        doc = change.value
                        break
                token = ann[keys.RECONCILE_REQUESTED_AT]
                waiting = ready_status(doc, token, False, NOT_READY, "")
                waiting["conditions"][0]["reason"] = "SourceNotReady"
                await put(bus, waiting)
                while "waiting for its source" not in (seen or [""])[-1]:
                    seen.append((await proc.stderr.readline()).decode())
                    assert seen[-1], f"ended before waiting: {seen}"
                await put(bus, ready_status(doc, token, True, "Helm install succeeded", "0.1.0"))
                rest = (await proc.stderr.read()).decode()
                code = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert code == 0, "".join(seen) + rest
    assert seen[-1].strip() == f"◎ HelmRelease web is waiting for its source: {NOT_READY}"
    assert "✗" not in "".join(seen) + rest
