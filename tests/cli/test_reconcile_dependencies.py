"""`fluxbus reconcile` of an object whose dependency is still catching up: it is
shown waiting for the dependency (not failed), and succeeds when the dependency
lands, as the service's retry applies it."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from cli_helpers import FLUXBUS, Cli, controller, heartbeat, ready_status

from fluxbus_cli import store
from fluxbus_common import keys
from fluxbus_common.bus import Bus
from fluxbus_common.settings import BusSettings

APPS = "kustomization.flux-system.apps"
INFRA = "kustomization.flux-system.infra"
REVISION = "main@sha1:4b2c5e0d"
MANIFESTS = """
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: fleet, namespace: flux-system}
spec: {interval: 1m, url: "https://example.com/fleet", ref: {branch: main}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: infra, namespace: flux-system}
spec: {interval: 1m, path: ./infra, prune: true, sourceRef: {kind: GitRepository, name: fleet}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  interval: 1m
  path: ./apps
  prune: true
  sourceRef: {kind: GitRepository, name: fleet}
  dependsOn: [{name: infra}]
"""
NOT_UP_TO_DATE = "dependency 'flux-system/infra' revision is not up to date, retrying in 30s"


async def put(bus: Bus, key: str, status: dict) -> None:
    current = await bus.get_status(key)
    await bus.put_status(key, status, None if current is None else current.revision)


def waiting_status(doc: dict, handled: str) -> dict:
    status = ready_status(doc, handled, False, NOT_UP_TO_DATE, "")
    status["conditions"][0]["reason"] = "DependencyNotReady"
    del status["lastAppliedRevision"]
    return status


@contextlib.asynccontextmanager
async def dependent(bus: Bus) -> AsyncIterator[None]:
    """Stands in for the kustomize service on `apps`: a request handled while `infra`
    has not applied REVISION ends DependencyNotReady; `infra` landing requeues it."""

    async def run() -> None:
        entry = None
        async for change in bus.watch_objects("kustomization"):
            annotations = (change.value or {}).get("metadata", {}).get("annotations") or {}
            if change.key == APPS and keys.RECONCILE_REQUESTED_AT in annotations:
                entry = change.value
                break
        assert entry is not None
        handled = entry["metadata"]["annotations"][keys.RECONCILE_REQUESTED_AT]
        await put(bus, APPS, waiting_status(entry, handled))
        await store.wait_for_status(bus, INFRA, lambda s: s.get("lastAppliedRevision") == REVISION)
        progressing = waiting_status(entry, handled)
        progressing["conditions"][0].update(status="Unknown", reason="Progressing", message="")
        await put(bus, APPS, progressing)
        await put(bus, APPS, ready_status(entry, handled, True, "Applied", REVISION))

    async with heartbeat(bus, "kustomization"):
        task = asyncio.create_task(run(), name="stand-in-kustomize")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_reconcile_with_source_waits_for_the_dependency_and_succeeds_when_it_lands(
    cli: Cli, bus: Bus, bus_settings: BusSettings
):
    assert (await cli("apply", "-f", "-", input=MANIFESTS)).code == 0
    async with controller(bus, "gitrepository"), dependent(bus):
        proc = await asyncio.create_subprocess_exec(
            str(FLUXBUS),
            "reconcile",
            "ks",
            "apps",
            "--with-source",
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "FLUXBUS_NATS_URL": bus_settings.url},
        )
        assert proc.stderr is not None
        seen: list[str] = []
        try:
            async with asyncio.timeout(30):
                while "waiting for a dependency" not in (seen or [""])[-1]:
                    seen.append((await proc.stderr.readline()).decode())
                    assert seen[-1], f"ended before waiting: {seen}"
                infra = await bus.get_object(INFRA)
                assert infra is not None
                await put(bus, INFRA, ready_status(infra.value, None, True, "ok", REVISION))
                rest = (await proc.stderr.read()).decode()
                code = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    assert code == 0, "".join(seen) + rest
    assert seen[-1].strip() == f"◎ Kustomization apps is waiting for a dependency: {NOT_UP_TO_DATE}"
    assert "✗" not in "".join(seen) + rest
    assert f"✔ applied revision {REVISION}" in rest


async def test_a_dependency_that_never_lands_times_out_saying_what_it_waits_for(cli: Cli, bus: Bus):
    assert (await cli("apply", "-f", "-", input=MANIFESTS)).code == 0
    async with dependent(bus):
        result = await cli("reconcile", "ks", "apps", "--timeout", "1s")

    assert result.code == 1
    assert (
        "timed out after 1s waiting for Kustomization 'flux-system/apps' to be reconciled: "
        f"still waiting for a dependency ({NOT_UP_TO_DATE})"
    ) in result.stderr
