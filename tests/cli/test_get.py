"""`fluxbus get`: flux-style tables, JSON/YAML lists, every namespace, every kind,
Secrets without their data, and `--watch`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal

import yaml
from cli_helpers import FLUXBUS, MANIFESTS, Cli, ready_status

from fluxbus_cli.commands import get as get_cmd
from fluxbus_cli.commands.kinds import kind
from fluxbus_cli.render import Output
from fluxbus_common.bus import Bus
from fluxbus_common.settings import BusSettings
from fluxbus_common.testing.plugin import wait_for

REVISION = "master@sha1:9f3c1e2a"


async def reconciled(bus: Bus, key: str, *, ready: bool = True, message: str = "ok") -> None:
    """Write the status a controller would after reconciling `key`."""
    entry = await bus.get_object(key)
    assert entry is not None
    current = await bus.get_status(key)
    status = ready_status(entry.value, None, ready, message, REVISION)
    await bus.put_status(key, status, None if current is None else current.revision)


def table(text: str) -> list[list[str]]:
    """Split a printed table into cells (columns are separated by 2+ spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]


async def test_the_table_shows_readiness_message_revision_suspension_and_age(cli: Cli, bus: Bus):
    await cli("apply", "-f", str(MANIFESTS / "podinfo.yaml"))
    await reconciled(bus, "gitrepository.flux-system.podinfo", message="stored artifact")

    result = await cli("get", "gitrepositories")

    assert result.code == 0, result.stderr
    header, row = table(result.stdout)
    assert header == ["NAME", "READY", "STATUS", "REVISION", "SUSPENDED", "AGE"]
    assert row[:5] == ["podinfo", "True", "stored artifact", REVISION, "False"]
    assert row[5].endswith("s")


async def test_an_object_not_reconciled_yet_reads_unknown(cli: Cli):
    await cli("apply", "-f", str(MANIFESTS / "podinfo.yaml"))
    _, row = table((await cli("get", "ks")).stdout)
    assert row[:3] == ["podinfo", "Unknown", "waiting to be reconciled"]
    assert row[3] == "False"  # SUSPENDED: no revision yet, so the column is empty


async def test_all_namespaces_adds_the_namespace_column(cli: Cli):
    await cli("apply", "-f", str(MANIFESTS / "images.yaml"))
    await cli(
        "apply",
        "-f",
        "-",
        "-n",
        "apps",
        input=(MANIFESTS / "images.yaml").read_text().replace("namespace: flux-system", ""),
    )

    result = await cli("get", "imagerepositories", "-A")

    rows = table(result.stdout)
    assert rows[0][:2] == ["NAMESPACE", "NAME"]
    assert [r[:2] for r in rows[1:]] == [["apps", "podinfo"], ["flux-system", "podinfo"]]
    only_apps = table((await cli("get", "imagerepository", "-n", "apps")).stdout)
    assert [r[0] for r in only_apps] == ["NAME", "podinfo"]


async def test_get_all_lists_every_toolkit_kind(cli: Cli):
    await cli("apply", "-f", str(MANIFESTS))

    result = await cli("get", "all")

    names = [row[0] for row in table(result.stdout) if row[0] != "NAME"]
    assert names == [
        "gitrepository/podinfo",
        "kustomization/podinfo",
        "imagerepository/podinfo",
        "imagepolicy/podinfo",
        "provider/slack-bot",
        "alert/slack",
        "receiver/github-receiver",
    ]


async def test_json_of_several_objects_is_a_list_with_status_merged(cli: Cli, bus: Bus):
    await cli("apply", "-f", str(MANIFESTS / "podinfo.yaml"))
    await reconciled(bus, "kustomization.flux-system.podinfo")

    listed = json.loads((await cli("get", "ks", "-o", "json")).stdout)

    assert listed["apiVersion"] == "v1" and listed["kind"] == "List"
    [item] = listed["items"]
    assert item["status"]["lastAppliedRevision"] == REVISION
    assert item["status"]["conditions"][0]["type"] == "Ready"
    as_yaml = yaml.safe_load((await cli("get", "ks", "podinfo", "-o", "yaml")).stdout)
    assert as_yaml == item


async def test_secrets_are_listed_without_their_data(fluxbus: Cli):
    await fluxbus("apply", "-f", str(MANIFESTS / "notifications" / "receiver.yaml"))

    listed = await fluxbus("get", "secrets")
    as_json = await fluxbus("get", "secret", "webhook-token", "-o", "json")

    assert table(listed.stdout) == [
        ["NAME", "TYPE", "DATA", "AGE"],
        ["webhook-token", "Opaque", "1", table(listed.stdout)[1][3]],
    ]
    assert json.loads(as_json.stdout)["data"] == {"token": "<redacted>"}
    for output in (listed.output, as_json.output):
        assert "s3cr3t-webhook-token-value" not in output
        assert "czNjcjN0LXdlYmhvb2stdG9rZW4tdmFsdWU" not in output  # its base64


async def test_a_missing_object_or_unknown_kind_exits_non_zero(cli: Cli):
    missing = await cli("get", "ks", "nope")
    unknown = await cli("get", "gitrepos")
    assert missing.code == 1
    assert "Kustomization 'flux-system/nope' not found" in missing.stderr
    assert unknown.code == 1
    assert 'unknown kind "gitrepos"' in unknown.stderr


async def test_watch_prints_the_current_objects_then_each_change(cli: Cli, bus: Bus):
    await cli("apply", "-f", str(MANIFESTS / "podinfo.yaml"))
    lines: list[str] = []
    watching = asyncio.create_task(
        get_cmd.watch(bus, Output(), kind("ks"), "flux-system", emit=lines.append)
    )
    try:
        await wait_for(lambda: len(lines) >= 2, message="the initial table")
        assert lines[0].split()[:2] == ["NAME", "READY"]
        assert "waiting to be reconciled" in lines[1]

        await reconciled(bus, "kustomization.flux-system.podinfo", message="applied it")

        await wait_for(lambda: any("applied it" in line for line in lines), message="the change")
        assert lines[-1].split()[:2] == ["podinfo", "True"]
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)


async def test_the_console_script_watches_until_interrupted(
    cli: Cli, bus: Bus, bus_settings: BusSettings
):
    await cli("apply", "-f", str(MANIFESTS / "podinfo.yaml"))
    proc = await asyncio.create_subprocess_exec(
        str(FLUXBUS),
        "get",
        "gitrepositories",
        "--watch",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "FLUXBUS_NATS_URL": bus_settings.url},
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        async with asyncio.timeout(30):
            assert (await proc.stdout.readline()).decode().split()[:2] == ["NAME", "READY"]
            assert "waiting to be reconciled" in (await proc.stdout.readline()).decode()
            await reconciled(bus, "gitrepository.flux-system.podinfo", message="fetched it")
            assert "fetched it" in (await proc.stdout.readline()).decode()
            proc.send_signal(signal.SIGINT)
            code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0
    assert "Traceback" not in (await proc.stderr.read()).decode()


async def test_image_kinds_show_flux_columns_last_scan_tags_latest_image_and_last_run(
    cli: Cli, bus: Bus
):
    await cli("apply", "-f", str(MANIFESTS / "images.yaml"))
    scanned = "2026-12-04T10:00:00Z"
    await bus.put_status(
        "imagerepository.flux-system.podinfo",
        {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Succeeded",
                    "message": "successful scan: found 42 tags with checksum 1",
                    "lastTransitionTime": scanned,
                }
            ],
            "lastScanResult": {"tagCount": 42, "scanTime": scanned, "revision": "1"},
        },
        None,
    )
    await bus.put_status(
        "imagepolicy.flux-system.podinfo",
        {"latestRef": {"name": "ghcr.io/stefanprodan/podinfo", "tag": "5.0.3"}},
        None,
    )

    repos = table((await cli("get", "imagerepositories")).stdout)
    assert repos[0] == ["NAME", "LAST SCAN", "TAGS", "SUSPENDED", "READY", "MESSAGE", "AGE"]
    assert repos[1][:5] == ["podinfo", scanned, "42", "False", "True"]
    policies = table((await cli("get", "imagepolicies")).stdout)
    assert policies[0] == ["NAME", "LATEST IMAGE", "READY", "MESSAGE", "AGE"]
    assert policies[1][:2] == ["podinfo", "ghcr.io/stefanprodan/podinfo:5.0.3"]


async def test_watch_never_prints_unknown_for_an_object_that_has_a_status(cli: Cli, bus: Bus):
    await cli("apply", "-f", str(MANIFESTS / "podinfo.yaml"))
    key = "kustomization.flux-system.podinfo"
    await reconciled(bus, key, message="applied it")
    lines: list[str] = []
    watching = asyncio.create_task(
        get_cmd.watch(bus, Output(), kind("ks"), "flux-system", emit=lines.append)
    )
    try:
        await wait_for(lambda: len(lines) >= 2, message="the initial table")
        await cli("suspend", "ks", "podinfo")  # an object change after the watches' replay
        await wait_for(lambda: len(lines) >= 3, message="the suspension")
        await cli("delete", "--silent", "ks", "podinfo")
        await wait_for(lambda: "deleted" in lines[-1], message="the deletion")
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)

    assert [table(line)[0][:3] for line in lines[1:]] == [
        ["podinfo", "True", "applied it"],
        ["podinfo", "True", "applied it"],  # SUSPENDED changed
        ["podinfo", "True", "deleted"],
    ]
    assert not any("Unknown" in line for line in lines)
