"""Flux fidelity of the status (issue #11): progress published while health
checks run, as kustomize-controller patches it mid-reconcile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconcile_helpers import condition, deployment, kustomization, manifests, namespace, running

from fluxbus_common.bus import Bus
from fluxbus_common.testing.plugin import wait_for
from fluxbus_kustomize.settings import KustomizeSettings

FAST = KustomizeSettings(dependency_requeue=0.5, min_timeout=1.0)


async def test_health_checks_in_progress_are_published_as_progressing(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    """kustomization_controller.go `checkHealth`: before waiting, Flux marks
    Reconciling and Healthy "Running health checks for revision … with a timeout of …"
    (reason Progressing) with Ready=Unknown, and patches the status at once; spec:
    "Reconciling Kustomization"."""
    repo = {"a.yaml": manifests(namespace("apps"), deployment("web", "apps", "nginx:broken"))}
    async with running(bus, kubelite, tmp_path / "env", settings=FAST) as env:
        rev = await env.publish(repo)
        key = await env.apply(kustomization("app", wait=True, timeout="4s", retryInterval="1m"))
        expected = f"Running health checks for revision {rev} with a timeout of 4s"

        async def progressing() -> dict[str, Any] | None:
            st = await env.status(key)
            return st if condition(st).get("message") == expected else None

        status = await wait_for(progressing, message="health checks in progress")
        for ctype, value in (("Ready", "Unknown"), ("Reconciling", "True"), ("Healthy", "Unknown")):
            assert condition(status, ctype)["status"] == value, ctype
            assert condition(status, ctype)["reason"] == "Progressing", ctype
        assert condition(status, "Healthy")["message"] == expected
        status = await env.failing(key, "HealthCheckFailed", timeout=20)
        assert condition(status, "Reconciling")["reason"] == "ProgressingWithRetry"


async def test_a_new_revision_is_published_as_in_progress_before_it_is_applied(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    """kustomization_controller.go `reconcile`: every attempt starts with Ready=Unknown
    "Reconciliation in progress" and Reconciling "Fetching manifests for revision …";
    fluxbus publishes it for each new revision (an unchanged one writes nothing)."""
    slow = {"a.yaml": manifests(namespace("apps"), deployment("web", "apps", "nginx:broken"))}
    async with running(bus, kubelite, tmp_path / "env", settings=FAST) as env:
        rev = await env.publish(slow)
        key = await env.apply(kustomization("app", wait=True, timeout="4s", retryInterval="1m"))
        await env.failing(key, "HealthCheckFailed", timeout=20)
        seen: list[dict[str, Any]] = []

        async def watch() -> bool:
            st = await env.status(key)
            seen.append(condition(st, "Reconciling"))
            return condition(st).get("status") == "Unknown"

        rev2 = await env.publish(
            {"a.yaml": manifests(namespace("apps"), deployment("web", "apps", "nginx:1.26"))}
        )
        await wait_for(watch, message="new revision in progress")
        assert rev2 != rev
        assert any(
            c.get("message", "").startswith(f"Fetching manifests for revision {rev2}")
            or c.get("message", "").startswith(f"Running health checks for revision {rev2}")
            for c in seen
        )
        await env.ready(key, rev2)
