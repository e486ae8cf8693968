"""`fluxbus events` (stream listing, filters, follow) and `fluxbus export` (clean YAML
that applies back as unchanged)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml
from cli_helpers import MANIFESTS, Cli, heartbeat

from fluxbus_cli.commands import events as events_cmd
from fluxbus_cli.render import Output
from fluxbus_common.bus import Bus
from fluxbus_common.events import Event, ObjectReference, Severity
from fluxbus_common.testing.plugin import wait_for


def event(kind: str, namespace: str, name: str, reason: str, message: str, error=False) -> Event:
    return Event(
        involved_object=ObjectReference(kind=kind, namespace=namespace, name=name),
        severity=Severity.ERROR if error else Severity.INFO,
        reason=reason,
        message=message,
        reporting_controller="test",
        timestamp="2026-11-26T06:00:00Z",
    )


async def publish_history(bus: Bus) -> None:
    await bus.publish_event(
        event("GitRepository", "flux-system", "podinfo", "NewArtifact", "stored artifact")
    )
    await bus.publish_event(
        event("Kustomization", "flux-system", "podinfo", "BuildFailed", "kustomize failed", True)
    )
    await bus.publish_event(
        event("Kustomization", "apps", "podinfo", "ReconciliationSucceeded", "applied")
    )
    await bus.publish_event(
        event("Kustomization", "flux-system", "podinfo.v2", "ReconciliationSucceeded", "dotted")
    )


async def test_events_lists_the_namespace_as_a_table(cli: Cli, bus: Bus):
    await publish_history(bus)
    result = await cli("events")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["TIME", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert [line.split()[1:4] for line in lines[1:]] == [
        ["Normal", "NewArtifact", "GitRepository/podinfo"],
        ["Warning", "BuildFailed", "Kustomization/podinfo"],
        ["Normal", "ReconciliationSucceeded", "Kustomization/podinfo.v2"],
    ]
    assert lines[1].split()[0] == "2026-11-26T06:00:00Z"


async def test_events_for_one_object_and_across_namespaces(fluxbus: Cli, bus: Bus):
    await publish_history(bus)
    only = await fluxbus("events", "--for", "Kustomization/podinfo")
    everywhere = await fluxbus("events", "-A", "--for", "ks/podinfo")
    assert [line.split()[2] for line in only.stdout.splitlines()[1:]] == ["BuildFailed"]
    rows = [line.split()[:1] + line.split()[3:4] for line in everywhere.stdout.splitlines()]
    assert rows == [
        ["NAMESPACE", "REASON"],
        ["flux-system", "BuildFailed"],
        ["apps", "ReconciliationSucceeded"],
    ]


async def test_events_follow_prints_new_events_as_they_arrive(bus: Bus):
    lines: list[str] = []
    following = asyncio.create_task(
        events_cmd.follow(bus, Output(), "flux-system", emit=lines.append)
    )
    try:
        await wait_for(lambda: lines, message="the header")
        await bus.publish_event(event("GitRepository", "apps", "other", "NewArtifact", "elsewhere"))
        await bus.publish_event(
            event("GitRepository", "flux-system", "podinfo", "NewArtifact", "fresh artifact")
        )
        await wait_for(lambda: any("fresh artifact" in line for line in lines), message="event")
        assert not any("elsewhere" in line for line in lines)
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)


async def test_export_prints_clean_yaml_that_applies_back_unchanged(
    fluxbus: Cli, cli: Cli, bus: Bus, tmp_path: Path
):
    await cli("apply", "-f", str(MANIFESTS))
    async with heartbeat(bus, "kustomization"):  # a live controller, which never answers
        await cli("reconcile", "ks", "podinfo", "--timeout", "1ms")  # leaves its annotation
    await bus.put_status("kustomization.flux-system.podinfo", {"observedGeneration": 1}, 0)

    exported = await fluxbus("export", "all")

    assert exported.code == 0, exported.stderr
    docs = list(yaml.safe_load_all(exported.stdout))
    assert len(docs) == 7
    for doc in docs:
        assert "status" not in doc
        assert set(doc["metadata"]) <= {"name", "namespace", "labels", "annotations"}
    (tmp_path / "export.yaml").write_text(exported.stdout)
    again = await cli("apply", "-f", str(tmp_path / "export.yaml"))
    assert again.code == 0
    assert all(line.endswith(" unchanged") for line in again.stdout.splitlines())
    assert len(again.stdout.splitlines()) == 7


async def test_export_of_one_object_and_refusal_to_export_secrets(cli: Cli):
    await cli("apply", "-f", str(MANIFESTS / "podinfo.yaml"))
    one = await cli("export", "gitrepo", "podinfo")
    secrets = await cli("export", "secrets")
    [doc] = list(yaml.safe_load_all(one.stdout))
    assert doc["kind"] == "GitRepository"
    assert doc["spec"]["ignore"] == "/*\n!/kustomize\n"
    assert secrets.code == 1
    assert "Secrets are not exported" in secrets.stderr
