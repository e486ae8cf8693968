"""Operating HelmReleases: dependencies, suspension, drift detection and
correction, and the service as deployed (`app.run`)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
from helmrelease_helpers import SETTINGS, chart, condition, helmrelease, running

from fluxbus_common.bus import Bus
from fluxbus_common.runtime import Runtime
from fluxbus_common.settings import BusSettings
from fluxbus_common.testing.plugin import wait_for
from fluxbus_helm import app
from fluxbus_helm.settings import HelmSettings


async def test_a_helmrelease_waits_for_the_ones_it_depends_on(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path) as env:
        app_key = await env.apply(helmrelease("app", dependsOn=[{"name": "db"}]))
        db_key = await env.apply(helmrelease("db"))
        st = await env.until(app_key, "Ready", "False", "DependencyNotReady")
        assert condition(st)["message"] == "dependency 'default/db' is not ready"
        assert await env.history("app") == []

        await env.publish_chart("default", "default-db", chart())
        await env.ready(db_key)
        await env.publish_chart("default", "default-app", chart())
        await env.ready(app_key)
        assert [r.revision for r in await env.history("app")] == [1]


async def test_a_suspended_helmrelease_is_left_alone(bus: Bus, kubelite: Any, tmp_path: Path):
    async with running(bus, kubelite, tmp_path) as env:
        key = await env.apply(helmrelease("web", values={"mode": "one"}))
        await env.publish_chart("default", "default-web", chart())
        await env.ready(key)
        await env.apply(helmrelease("web", suspend=True, values={"mode": "two"}))
        await env.request(key)
        # a reconcile queued after the suspended one has run: the queue went past it
        other = await env.apply(helmrelease("other"))
        await env.publish_chart("default", "default-other", chart())
        await env.ready(other)

        assert [r.revision for r in await env.history("web")] == [1]
        assert env.get("configmap", "web-settings")["data"]["mode"] == "one"

        await env.apply(helmrelease("web", values={"mode": "two"}))
        await env.until(key, "Ready", "True", "UpgradeSucceeded")
        assert env.get("configmap", "web-settings")["data"]["mode"] == "two"


async def test_drift_is_corrected_when_enabled_and_only_reported_in_warn_mode(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path) as env:
        fixed = await env.apply(helmrelease("fixed", driftDetection={"mode": "enabled"}))
        warned = await env.apply(helmrelease("warned", driftDetection={"mode": "warn"}))
        await env.publish_chart("default", "default-fixed", chart())
        await env.publish_chart("default", "default-warned", chart())
        st = await env.ready(fixed)
        assert condition(st, "Drifted")["reason"] == "NoDriftDetected"
        await env.ready(warned)
        for name in ("fixed-settings", "warned-settings"):
            patched = kubelite.kubectl(
                "patch", "configmap", name, "--type=merge", "-p", '{"data":{"mode":"manual"}}'
            )
            assert patched.returncode == 0, patched.stderr

        await env.reconciled(fixed)
        assert env.get("configmap", "fixed-settings")["data"]["mode"] == "default"
        reasons = [e.reason for e in await env.events(fixed)]
        assert "DriftDetected" in reasons and "DriftCorrected" in reasons
        # the corrected objects stay Helm's to upgrade
        await env.apply(
            helmrelease("fixed", driftDetection={"mode": "enabled"}, values={"mode": "next"})
        )
        await env.until(fixed, "Ready", "True", "UpgradeSucceeded")
        assert env.get("configmap", "fixed-settings")["data"]["mode"] == "next"

        st = await env.reconciled(warned)
        drifted = condition(st, "Drifted")
        assert drifted["status"] == "True"
        assert "ConfigMap/default/warned-settings changed: data.mode" in drifted["message"]
        assert env.get("configmap", "warned-settings")["data"]["mode"] == "manual"
        assert [r.revision for r in await env.history("warned")] == [1]


async def test_the_service_starts_without_helm_and_serves_its_probes(
    bus: Bus, bus_settings: BusSettings, kubelite: Any, tmp_path: Path
):
    stop = asyncio.Event()
    started: list[tuple[list[Runtime], int]] = []
    service = asyncio.create_task(
        app.run(
            bus_settings=bus_settings,
            runtime_settings=replace(SETTINGS, http_addr="127.0.0.1:0"),
            settings=HelmSettings(dependency_requeue=0.5),
            kubeconfig=kubelite.kubeconfig,
            helm_available=False,
            stop=stop,
            on_ready=lambda runtimes, port: started.append((runtimes, port)),
        )
    )
    try:
        await wait_for(lambda: started, message="service started")
        _, port = started[0]
        key = "helmrelease.default.web"
        await bus.apply_object(key, helmrelease("web"))

        async def stalled() -> bool:
            entry = await bus.get_status(key)
            return entry is not None and condition(entry.value, "Stalled").get("status") == "True"

        await wait_for(stalled, message="stalled without helm")
        async with aiohttp.ClientSession() as http:
            for probe in ("healthz", "readyz", "metrics"):
                async with http.get(f"http://127.0.0.1:{port}/{probe}") as r:
                    assert r.status == 200, probe
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(service, 20)


async def test_force_at_upgrades_an_in_sync_release_and_reset_at_clears_failures(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path) as env:
        key = await env.apply(helmrelease("web"))
        await env.publish_chart("default", "default-web", chart())
        await env.ready(key)

        token = await env.request(key, **{"reconcile.fluxcd.io/forceAt": "token"})
        st = await env.until(key, "Ready", "True", "UpgradeSucceeded")
        assert st["lastHandledForceAt"] == token
        assert [r.revision for r in await env.history("web")] == [1, 2]

        token = await env.request(key, **{"reconcile.fluxcd.io/resetAt": "token"})

        async def reset() -> dict[str, Any] | None:
            status = await env.status(key)
            return status if status.get("lastHandledResetAt") == token else None

        await wait_for(reset, message="resetAt handled")
        assert [r.revision for r in await env.history("web")] == [1, 2]
