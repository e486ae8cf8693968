"""A Kustomization waiting on the toolkit objects it put in the store (the
HelmReleases of Flux's `infrastructure/controllers`, a HelmRepository, a
Kustomization…) judges them as Flux judges its own kinds: Ready=True for the
current generation, Failed only once Ready=False is Stalled."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fluxbus_common import subjects
from fluxbus_common.api import resolve_kind
from fluxbus_common.bus import Bus
from fluxbus_kustomize.health_wait import store_health, wait_healthy
from fluxbus_kustomize.logic.health import HealthCheckExpr, Status
from fluxbus_kustomize.ports import Change
from fluxbus_kustomize.store_apply import store_ref

HELM_V2 = "helm.toolkit.fluxcd.io/v2"


def condition(ctype: str, status: str, message: str, reason: str = "Reason") -> dict[str, str]:
    return {"type": ctype, "status": status, "reason": reason, "message": message}


def release(generation: int = 2, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": HELM_V2,
        "kind": "HelmRelease",
        "metadata": {"name": "web", "namespace": "apps", "generation": generation},
        "spec": {"interval": "10m", "chart": {"spec": {"chart": "web", "sourceRef": {}}}},
        "status": status,
    }


READY = condition("Ready", "True", "Helm install succeeded")
FAILING = condition("Ready", "False", "Helm install failed: timed out", "InstallFailed")
STALLED = condition("Stalled", "True", "Failed to install after 1 attempt(s)", "RetriesExceeded")


@pytest.mark.parametrize(
    ("status", "expected", "message"),
    [
        pytest.param(
            {"observedGeneration": 2, "conditions": [READY]},
            Status.CURRENT,
            "Helm install succeeded",
            id="ready-at-the-current-generation",
        ),
        pytest.param(
            {"observedGeneration": 1, "conditions": [READY]},
            Status.IN_PROGRESS,
            "generation 2 not reconciled yet (observed 1)",
            id="ready-for-an-older-generation-is-not-enough",
        ),
        pytest.param(
            {"observedGeneration": 2, "conditions": [FAILING]},
            Status.IN_PROGRESS,
            "Helm install failed: timed out",
            id="failing-with-retries-left-is-still-in-progress",
        ),
        pytest.param(
            {"observedGeneration": 2, "conditions": [FAILING, STALLED]},
            Status.FAILED,
            "Failed to install after 1 attempt(s)",
            id="stalled-is-failed",
        ),
        pytest.param(
            {"observedGeneration": 2, "conditions": [condition("Ready", "Unknown", "Running")]},
            Status.IN_PROGRESS,
            "Running",
            id="reconciling",
        ),
        pytest.param({}, Status.IN_PROGRESS, "observed None", id="never-reconciled"),
    ],
)
def test_a_stored_toolkit_object_is_judged_as_flux_judges_its_kinds(status, expected, message):
    result = store_health(release(**status))
    assert result.status is expected
    assert message in result.message


def test_a_matching_health_check_expression_decides_instead():
    expr = HealthCheckExpr.from_spec(
        {"apiVersion": HELM_V2, "kind": "HelmRelease", "current": "status.observedGeneration > 0"}
    )
    result = store_health(release(observedGeneration=2, conditions=[FAILING]), [expr])
    assert result.status is Status.CURRENT


async def stored_release(bus: Bus) -> Change:
    doc = release()
    doc.pop("status")
    key = subjects.object_key("HelmRelease", "apps", "web")
    await bus.apply_object(key, doc)
    ref = store_ref(HELM_V2, resolve_kind("HelmRelease"), "apps", "web")
    return Change(ref, "created", doc)


async def put_status(bus: Bus, **status: Any) -> None:
    key = subjects.object_key("HelmRelease", "apps", "web")
    current = await bus.get_status(key)
    await bus.put_status(key, status, None if current is None else current.revision)


async def test_the_wait_lasts_through_a_failing_attempt_until_the_release_is_ready(bus: Bus):
    target = await stored_release(bus)
    waiting = asyncio.create_task(wait_healthy(None, bus, [target], [], 30))  # type: ignore[arg-type]
    await put_status(bus, observedGeneration=1, conditions=[FAILING])
    await put_status(bus, observedGeneration=1, conditions=[READY])
    assert await waiting == (True, [])


async def test_a_stalled_release_ends_the_wait_at_once_naming_why(bus: Bus):
    target = await stored_release(bus)
    waiting = asyncio.create_task(wait_healthy(None, bus, [target], [], 30))  # type: ignore[arg-type]
    await put_status(bus, observedGeneration=1, conditions=[FAILING, STALLED])
    healthy, unhealthy = await waiting
    assert not healthy
    assert unhealthy == [
        "HelmRelease/apps/web status: 'Failed': Failed to install after 1 attempt(s)"
    ]
