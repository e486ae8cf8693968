"""The kustomize service as deployed: `app.run` (composition root) against
kubelite and nats-server, correcting drift on its own interval."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
from reconcile_helpers import SETTINGS, Env, configmap, kustomization, manifests

from fluxbus_common.bus import Bus
from fluxbus_common.runtime import Runtime
from fluxbus_common.settings import BusSettings
from fluxbus_common.testing.plugin import wait_for
from fluxbus_kustomize import app
from fluxbus_kustomize.settings import KustomizeSettings


async def test_service_applies_and_corrects_drift_every_interval(
    bus: Bus, bus_settings: BusSettings, kubelite: Any, tmp_path: Path
):
    stop = asyncio.Event()
    started: list[tuple[list[Runtime], int]] = []
    service = asyncio.create_task(
        app.run(
            bus_settings=bus_settings,
            runtime_settings=replace(SETTINGS, http_addr="127.0.0.1:0"),
            settings=KustomizeSettings(min_timeout=1.0),
            kubeconfig=kubelite.kubeconfig,
            stop=stop,
            on_ready=lambda runtimes, port: started.append((runtimes, port)),
        )
    )
    try:
        await wait_for(lambda: started, message="service started")
        runtimes, port = started[0]
        env = Env(bus, kubelite, None, runtimes[0], runtimes[0].reconciler, tmp_path)  # type: ignore[arg-type]
        await asyncio.to_thread(tmp_path.mkdir, parents=True, exist_ok=True)
        rev = await env.publish({"a.yaml": manifests(configmap("settings", "default", mode="git"))})
        key = await env.apply(kustomization("app", interval="1s"))
        await env.ready(key, rev)

        async with aiohttp.ClientSession() as http:

            async def ready_probe() -> bool:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                    return r.status == 200

            await wait_for(ready_probe, message="/readyz")

        patched = kubelite.kubectl(
            "patch", "configmap", "settings", "--type=merge", "-p", '{"data":{"mode":"manual"}}'
        )
        assert patched.returncode == 0, patched.stderr
        await wait_for(
            lambda: env.get("configmap", "settings")["data"]["mode"] == "git",
            timeout=10,
            message="drift corrected on the interval",
        )
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(service, 20)
