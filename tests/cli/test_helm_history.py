"""`fluxbus history helmrelease` and `fluxbus rollback helmrelease` against a
stand-in helm service that answers the rollback protocol (annotation
`fluxbus.io/rollback-to: <revision>` with a reconcile request) as HELM.md
describes it: a new Helm release with the chart and values of that revision."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cli_helpers import Cli, heartbeat

from fluxbus_common import keys
from fluxbus_common.bus import Bus
from fluxbus_common.ports import RevisionConflict

KEY = "helmrelease.apps.web"
RELEASE = """
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: web, namespace: apps}
spec:
  interval: 10m
  chart:
    spec: {chart: web, sourceRef: {kind: HelmRepository, name: charts}}
"""


def snapshot(version: int, status: str) -> dict[str, Any]:
    return {
        "name": "web",
        "namespace": "apps",
        "version": version,
        "status": status,
        "chartName": "web",
        "chartVersion": f"1.{version}.0",
        "appVersion": f"{version}.0",
        "configDigest": f"sha256:{str(version) * 64}",
        "digest": f"sha256:{'f' * 64}",
        "firstDeployed": f"2026-01-0{version}T00:00:00Z",
        "lastDeployed": f"2026-01-0{version}T00:00:00Z",
    }


def table(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]


async def write_status(bus: Bus, status: dict[str, Any]) -> None:
    while True:
        current = await bus.get_status(KEY)
        try:
            await bus.put_status(KEY, status, None if current is None else current.revision)
            return
        except RevisionConflict:
            continue


async def released(cli: Cli, bus: Bus, versions: int = 3) -> None:
    """Store apps/web with `versions` Helm releases recorded, the newest deployed."""
    assert (await cli("apply", "-f", "-", input=RELEASE)).code == 0
    history = [snapshot(v, "superseded") for v in range(versions, 0, -1)]
    history[0]["status"] = "deployed"
    await write_status(bus, {"observedGeneration": 1, "history": history})


async def answer_rollbacks(bus: Bus, *, succeed: bool) -> None:
    """Answer each rollback request: a new release copying the target's chart and
    values (or Ready=False and nothing new, when not `succeed`); any other
    reconcile request ends Ready."""
    async for change in bus.watch_objects("HelmRelease"):
        annotations = (change.value or {}).get("metadata", {}).get("annotations") or {}
        token = annotations.get(keys.RECONCILE_REQUESTED_AT)
        target = annotations.get(keys.ROLLBACK_ANNOTATION)
        status = dict((await bus.get_status(KEY)).value)
        if token is None or status.get("lastHandledReconcileAt") == token:
            continue
        history = [dict(s) for s in status["history"]]
        if target is not None and succeed:
            base = next(s for s in history if s["version"] == int(target))
            history[0]["status"] = "superseded"
            new = {**base, "version": history[0]["version"] + 1, "status": "deployed"}
            history.insert(0, new)
            ready = {"type": "Ready", "status": "True", "reason": "RollbackSucceeded",
                     "message": f"Helm rollback to previous release apps/web.v{target} succeeded"}  # fmt: skip
        elif target is None:  # a plain reconcile: the release is as Git says
            ready = {"type": "Ready", "status": "True", "reason": "UpgradeSucceeded",
                     "message": "Helm upgrade succeeded"}  # fmt: skip
        else:
            ready = {"type": "Ready", "status": "False", "reason": "RollbackFailed",
                     "message": "Helm rollback failed: timed out waiting for the condition"}  # fmt: skip
        await write_status(
            bus, {**status, "history": history, "conditions": [ready],
                  "lastHandledReconcileAt": token},
        )  # fmt: skip


@contextlib.asynccontextmanager
async def helm_service(bus: Bus, *, succeed: bool = True) -> AsyncIterator[None]:
    async with heartbeat(bus, "helmrelease"), asyncio.TaskGroup() as tg:
        task = tg.create_task(answer_rollbacks(bus, succeed=succeed), name="stand-in-helm")
        try:
            yield
        finally:
            task.cancel()


async def test_history_lists_the_releases_newest_first(cli: Cli, bus: Bus):
    await released(cli, bus)

    result = await cli("history", "hr", "web", "-n", "apps")
    as_json = await cli("history", "helmrelease", "web", "-n", "apps", "-o", "json")

    assert result.code == 0, result.output
    rows = table(result.stdout)
    assert rows[0] == ["REVISION", "CHART", "APP VERSION", "CONFIG DIGEST", "STATUS", "DEPLOYED"]
    assert rows[1] == [
        "3", "web-1.3.0", "3.0", "sha256:333333333333", "deployed", "2026-01-03T00:00:00Z",
    ]  # fmt: skip
    assert [r[0] for r in rows[1:]] == ["3", "2", "1"]
    assert [e["version"] for e in json.loads(as_json.stdout)] == [3, 2, 1]


@pytest.mark.parametrize(
    ("flags", "revision"),
    [
        pytest.param((), 2, id="one-step-back-by-default"),
        pytest.param(("--steps", "2"), 1, id="steps"),
        pytest.param(("--to-revision", "1"), 1, id="to-revision"),
    ],
)
async def test_rollback_holds_the_release_and_resume_returns_it_to_git(
    cli: Cli, bus: Bus, flags: tuple[str, ...], revision: int
):
    await released(cli, bus)
    async with helm_service(bus):
        result = await cli("rollback", "hr", "web", "-n", "apps", *flags)
        doc = (await bus.get_object(KEY)).value
        history = (await cli("history", "hr", "web", "-n", "apps")).stdout
        resumed = await cli("resume", "hr", "web", "-n", "apps")

    assert result.code == 0, result.output
    assert f"rolled back to revision {revision}" in result.stderr
    assert doc["spec"]["suspend"] is True
    annotations = doc["metadata"]["annotations"]
    assert annotations[keys.SUSPENDED_REASON_ANNOTATION] == f"rolled back to revision {revision}"
    assert annotations[keys.ROLLBACK_ANNOTATION] == str(revision)
    assert table(history)[1][:2] == ["4", f"web-1.{revision}.0"]
    assert resumed.code == 0, resumed.output
    after = (await bus.get_object(KEY)).value
    assert after["spec"]["suspend"] is False
    assert keys.ROLLBACK_ANNOTATION not in after["metadata"]["annotations"]


async def test_a_failed_rollback_says_why_and_follows_git_again(cli: Cli, bus: Bus):
    await released(cli, bus)
    async with helm_service(bus, succeed=False):
        result = await cli("rollback", "hr", "web", "-n", "apps")

    assert result.code == 2
    assert "rollback failed: Helm rollback failed: timed out" in result.stderr
    doc = (await bus.get_object(KEY)).value
    assert not doc["spec"].get("suspend")
    assert keys.ROLLBACK_ANNOTATION not in doc["metadata"]["annotations"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param(("--to-revision", "3"), "revision 3 is the current release", id="current"),
        pytest.param(
            ("--to-revision", "9"), "revision 9 is not in its history (kept: 3, 2, 1)", id="gone"
        ),
        pytest.param(("--steps", "3"), "its history keeps 2 earlier releases", id="too-far"),
        pytest.param(("--to", "v1"), "a Helm revision is a number", id="not-a-number"),
        pytest.param(("--to", "1", "--steps", "1"), "give one of --to", id="both"),
    ],
)
async def test_rollback_refuses_with_a_clear_message(
    cli: Cli, bus: Bus, flags: tuple[str, ...], message: str
):
    await released(cli, bus)
    async with helm_service(bus):
        result = await cli("rollback", "hr", "web", "-n", "apps", *flags)
    assert result.code == 2
    assert message in result.stderr


async def test_rollback_says_at_once_when_no_helm_service_is_alive(cli: Cli, bus: Bus):
    await released(cli, bus)
    result = await cli("rollback", "hr", "web", "-n", "apps")
    assert result.code == 2
    assert "no live instance" in result.stderr and "HelmRelease" in result.stderr
    doc = (await bus.get_object(KEY)).value
    assert keys.ROLLBACK_ANNOTATION not in (doc["metadata"].get("annotations") or {})


async def test_history_of_a_release_never_installed_says_so(cli: Cli, bus: Bus):
    assert (await cli("apply", "-f", "-", input=RELEASE)).code == 0
    result = await cli("history", "hr", "web", "-n", "apps")
    assert result.code == 0
    assert "has no release history yet" in result.stderr
