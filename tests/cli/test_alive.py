"""Knowing the system is alive, with real service processes started by
`fluxbus up`'s `stack_up`: `check` names a stopped service, `up` restarts a
killed one and names one that is not ready, `logs` reads every replica, a
failed reconcile is logged at error level, and /metrics speaks Flux's names."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from cli_helpers import Ran, run_fluxbus
from prometheus_client.parser import text_string_to_metric_families

from fluxbus_cli.up import Stack, not_ready_lines, stack_up, wait_ready
from fluxbus_common import liveness
from fluxbus_common.bus import Bus
from fluxbus_common.settings import BusSettings
from fluxbus_common.testing.plugin import free_port, wait_for

FAST = {"FLUXBUS_HEARTBEAT_INTERVAL": "0.5", "FLUXBUS_LEASE_TTL": "3"}
"""Heartbeats and leases quick enough for tests that watch them change."""

BROKEN_REPO = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: broken
  namespace: flux-system
spec:
  interval: 1m0s
  url: http://127.0.0.1:{port}/nothing-listens-here.git
  ref:
    branch: main
"""


async def fluxbus(stack: Stack, *args: str, input: str | None = None) -> Ran:
    return await run_fluxbus(*args, url=stack.nats_url, input=input)


async def connect(stack: Stack) -> Bus:
    return await Bus.connect(BusSettings(url=stack.nats_url), "alive-test")


async def instance_beat(bus: Bus, instance: str) -> liveness.Heartbeat | None:
    for beat in await bus.heartbeats():
        if beat.instance == instance and beat.ready:
            return beat
    return None


@pytest.fixture
async def source_stack(tmp_path: Path) -> AsyncIterator[tuple[Stack, Bus]]:
    """The source service (replica 0) on its own NATS, ready (stack_up waits), with a bus to it."""
    async with stack_up(
        tmp_path / "state", cluster="none", services=("source",), quiet=True, extra_env=FAST
    ) as stack:
        bus = await connect(stack)
        try:
            yield stack, bus
        finally:
            await bus.close()


async def test_check_lists_every_service_and_fails_naming_a_stopped_one(tmp_path: Path):
    async with stack_up(tmp_path / "state", quiet=True, extra_env=FAST) as stack:
        healthy = await fluxbus(stack, "check")
        await stack.stop_service("kustomize")
        broken = await fluxbus(stack, "check")

    assert healthy.code == 0, healthy.stderr
    for service, shards in (
        ("source", "gitrepository=0 helmchart=0 helmrepository=0"),
        ("kustomize", "kustomization=0"),
        ("image-reflector", "imagepolicy=0 imagerepository=0 imageupdateautomation=0"),
        ("notifier", "alert=0 provider=0 receiver=0"),
        ("helm", "helmrelease=0"),
    ):
        assert f"✔ {service}: 1 instance: {service}-0 (v" in healthy.stderr
        assert f"ready, shards {shards}, up " in healthy.stderr
    assert "✔ stream FLUXBUS_LOGS" in healthy.stderr
    assert "✔ all checks passed" in healthy.stderr
    assert broken.code == 1
    assert "✗ kustomize: no live instance (is fluxbus-kustomize running?" in broken.stderr
    assert "✔ source: 1 instance" in broken.stderr
    assert "all checks passed" not in broken.stderr


async def test_up_restarts_a_killed_service_and_reports_it(tmp_path: Path):
    reports: list[str] = []
    async with stack_up(
        tmp_path / "state",
        cluster="none",
        services=("source",),
        quiet=True,
        extra_env=FAST,
        report=reports.append,
    ) as stack:
        bus = await connect(stack)
        try:
            first = await wait_for(lambda: instance_beat(bus, "source-0"), timeout=30)
            killed = stack.child("source").proc
            killed.send_signal(signal.SIGKILL)

            async def restarted() -> liveness.Heartbeat | None:
                beat = await instance_beat(bus, "source-0")
                return beat if beat is not None and beat.started != first.started else None

            second = await wait_for(restarted, timeout=30, message="a new source instance")
        finally:
            await bus.close()
        assert stack.child("source").proc.pid != killed.pid
        assert stack.child("source").restarts == 1

    assert reports[0].startswith("source exited with code -9; restarting in 0.5s")
    assert reports[1] == "source restarted (restart 1)"
    assert second.ready


async def test_up_names_the_service_that_is_not_ready(tmp_path: Path):
    env = {**FAST, "KUBECONFIG": str(tmp_path / "no-such-kubeconfig")}
    async with stack_up(
        tmp_path / "state",
        cluster="current",
        services=("kustomize",),
        quiet=True,
        extra_env=env,
        report=lambda _: None,
        ready_timeout=None,
    ) as stack:
        await wait_for(lambda: stack.child("kustomize").restarts >= 1, timeout=30)
        bus = await connect(stack)
        try:
            pending = await wait_ready(bus, ["kustomize"], 0.5, stack.started_at)
        finally:
            await bus.close()
        lines = list(not_ready_lines(stack, pending, 0.5))

    assert pending == ["kustomize"]
    assert lines[0] == "fluxbus is not up yet: not ready after 0.5s: kustomize"
    assert "kustomize: " in lines[1]
    assert "restarted" in lines[1] or "exited with code 1" in lines[1]
    assert "`fluxbus logs --service kustomize`" in lines[1]


async def test_logs_reads_every_replica_and_a_failed_reconcile_is_an_error(
    source_stack: tuple[Stack, Bus],
):
    stack, bus = source_stack
    await stack.start_service("source", 1)
    assert await wait_for(lambda: instance_beat(bus, "source-1"), timeout=30)
    applied = await fluxbus(stack, "apply", "-f", "-", input=BROKEN_REPO.format(port=free_port()))
    assert applied.code == 0, applied.stderr

    async def failed() -> Ran | None:
        ran = await fluxbus(
            stack, "logs", "--kind", "GitRepository", "--name", "broken", "--level", "error"
        )
        return ran if "reconcile.finished" in ran.stdout else None

    errors = await wait_for(failed, timeout=30, message="an error record of the reconcile")
    every = await fluxbus(stack, "logs", "--service", "source", "-o", "json")

    line = next(x for x in errors.stdout.splitlines() if "reconcile.finished" in x)
    assert " error   source/source-" in line
    assert "GitRepository/flux-system/broken reconcile.finished" in line
    assert "result=failed" in line
    assert all(" error " in x for x in errors.stdout.splitlines())
    instances = {json.loads(x)["instance"] for x in every.stdout.splitlines()}
    assert instances == {"source-0", "source-1"}


async def test_logs_follows_new_records(source_stack: tuple[Stack, Bus]):
    stack, _ = source_stack
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "fluxbus"),
        "logs",
        "-f",
        "--tail",
        "0",
        "--kind",
        "GitRepository",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "FLUXBUS_NATS_URL": stack.nats_url},
    )
    try:
        await fluxbus(stack, "apply", "-f", "-", input=BROKEN_REPO.format(port=free_port()))
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            while b"GitRepository/flux-system/broken" not in (line := await proc.stdout.readline()):
                assert line, "fluxbus logs -f ended"
    finally:
        proc.send_signal(signal.SIGINT)
        await proc.wait()
    assert proc.returncode == 0


async def test_metrics_carry_fluxs_names_and_labels(source_stack: tuple[Stack, Bus]):
    stack, bus = source_stack
    await fluxbus(stack, "apply", "-f", "-", input=BROKEN_REPO.format(port=free_port()))
    beat = await instance_beat(bus, "source-0")
    assert beat is not None and beat.http_port

    async def scrape() -> dict[str, list[tuple[dict[str, str], float]]] | None:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{beat.http_port}/metrics") as resp,
        ):
            text = await resp.text()
        samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples.setdefault(s.name, []).append((s.labels, s.value))
        return samples if "gotk_resource_info" in samples else None

    samples = await wait_for(scrape, timeout=30, message="per-object metrics")
    obj = {"kind": "GitRepository", "name": "broken", "namespace": "flux-system"}
    assert (obj, 1.0) in [
        ({k: v for k, v in labels.items() if k in obj}, value)
        for labels, value in samples["gotk_reconcile_duration_seconds_count"]
    ]
    conditions = {
        labels["status"]: value
        for labels, value in samples["gotk_reconcile_condition"]
        if labels["type"] == "Ready" and labels["name"] == "broken"
    }
    assert conditions == {"True": 0.0, "False": 1.0, "Unknown": 0.0, "Deleted": 0.0}
    [(info, value)] = samples["gotk_resource_info"]
    assert value == 1.0
    assert info == {
        "customresource_group": "source.toolkit.fluxcd.io",
        "customresource_kind": "GitRepository",
        "customresource_version": "v1",
        "name": "broken",
        "namespace": "flux-system",
        "ready": "False",
        "suspended": "false",
        "revision": "",
    }
    assert samples["process_cpu_seconds_total"][0][1] > 0
    assert samples["process_resident_memory_bytes"][0][1] > 0


@pytest.mark.parametrize(
    ("service", "own_setting"),
    [
        pytest.param("source", "FLUXBUS_LOG_LEVEL", id="source"),
        pytest.param("kustomize", "FLUXBUS_KUSTOMIZE_MIN_TIMEOUT", id="kustomize"),
        pytest.param("image-reflector", "FLUXBUS_IMAGE_WORK_DIR", id="image-reflector"),
        pytest.param("notifier", "FLUXBUS_RECEIVER_ADDR", id="notifier"),
    ],
)
def test_every_service_prints_its_settings_on_help_and_exits(service: str, own_setting: str):
    binary = str(Path(sys.executable).parent / f"fluxbus-{service}")
    ran = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith(f"Usage: fluxbus-{service} [--help] [--version]")
    for setting in (own_setting, "FLUXBUS_NATS_URL", "FLUXBUS_LOG_LEVEL", "FLUXBUS_HTTP_ADDR"):
        assert f"\n  {setting} " in ran.stdout
    refused = subprocess.run([binary, "--bogus"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert f"fluxbus-{service}: unexpected argument '--bogus'" in refused.stderr
