"""Install remediation by uninstall, Flux 2's RetryOnFailure strategy, a release
on the cluster of `spec.kubeConfig`, and moving from `spec.chart` to
`spec.chartRef`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from helmrelease_helpers import chart, condition, helmrelease, running

from fluxbus_common import subjects
from fluxbus_common.bus import Bus
from fluxbus_common.testing.plugin import wait_for
from fluxbus_helm.logic.storage import set_status


async def test_a_failed_install_is_uninstalled_then_retried_until_retries_run_out(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    install = {"remediation": {"retries": 1}}
    async with running(bus, kubelite, tmp_path) as env:
        key = await env.apply(helmrelease("web", values={"broken": True}, install=install))
        await env.publish_chart("default", "default-web", chart())
        st = await env.until(key, "Stalled", "True", "RetriesExceeded")

        assert condition(st, "Stalled")["message"] == "Failed to install after 2 attempt(s)"
        assert condition(st, "Released")["reason"] == "InstallFailed"
        assert st["installFailures"] == 2
        reasons = [e.reason for e in await env.events(key)]
        assert reasons.count("InstallFailed") == 2
        assert "UninstallSucceeded" in reasons
        assert [r.status for r in await env.history("web")] == ["failed"]


async def test_retry_on_failure_retries_without_remediation(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    strategy = {"strategy": {"name": "RetryOnFailure", "retryInterval": "1s"}}
    async with running(bus, kubelite, tmp_path) as env:
        key = await env.apply(helmrelease("web", values={"broken": True}, install=strategy))
        await env.publish_chart("default", "default-web", chart())

        async def retrying() -> dict[str, Any] | None:
            st = await env.status(key)
            return (
                st if condition(st, "Reconciling").get("message") == "retrying after 1s" else None
            )

        st = await wait_for(retrying, message="retrying after 1s")
        assert condition(st)["reason"] == "InstallFailed"
        assert "Remediated" not in {c["type"] for c in st["conditions"]}

        await env.apply(helmrelease("web", install=strategy))
        st = await env.ready(key)
        assert condition(st)["reason"] in ("InstallSucceeded", "UpgradeSucceeded")
        assert (await env.history("web"))[-1].status == "deployed"


async def test_a_release_goes_to_the_cluster_of_its_kubeconfig_secret(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    kubeconfig = await asyncio.to_thread(Path(kubelite.kubeconfig).read_text)
    await bus.put_secret(
        "default",
        "remote",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "remote", "namespace": "default"},
            "stringData": {"value": kubeconfig},
        },
    )
    async with running(bus, kubelite, tmp_path) as env:
        key = await env.apply(helmrelease("web", kubeConfig={"secretRef": {"name": "remote"}}))
        await env.publish_chart("default", "default-web", chart())
        await env.ready(key)
        assert env.get("configmap", "web-settings") is not None

        missing = await env.apply(
            helmrelease("other", kubeConfig={"secretRef": {"name": "absent"}})
        )
        await env.publish_chart("default", "default-other", chart())
        st = await env.until(missing, "Ready", "False", "InitFailed")
        assert condition(st)["message"] == (
            "could not get KubeConfig secret 'default/absent': not found"
        )


async def test_moving_to_chartref_deletes_the_generated_helmchart(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path) as env:
        key = await env.apply(helmrelease("web"))
        await env.publish_chart("default", "default-web", chart())
        await env.ready(key)
        await env.publish_chart("default", "shared", chart(version="0.2.0"), wait_object=False)
        await env.apply(
            helmrelease("web", chart=None, chartRef={"kind": "HelmChart", "name": "shared"})
        )
        st = await env.until(key, "Ready", "True", "UpgradeSucceeded")
        assert st["helmChart"] == "default/shared"
        generated = subjects.object_key("HelmChart", "default", "default-web")

        async def deleted() -> bool:
            return await bus.get_object(generated) is None

        await wait_for(deleted, message="generated HelmChart deleted")
        assert await bus.get_object(subjects.object_key("HelmChart", "default", "shared"))


async def test_a_release_stuck_pending_is_unlocked_and_upgraded(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path) as env:
        key = await env.apply(helmrelease("web", values={"mode": "one"}))
        await env.publish_chart("default", "default-web", chart())
        await env.ready(key)
        # a crash mid-upgrade leaves the record pending (as Helm would)
        record = env.get("secret", "sh.helm.release.v1.web.v1")
        assert record is not None
        stuck = set_status(record, "pending-upgrade", "Preparing upgrade")
        replaced = kubelite.kubectl("replace", "-f", "-", input=json.dumps(stuck))
        assert replaced.returncode == 0, replaced.stderr
        assert [r.status for r in await env.history("web")] == ["pending-upgrade"]

        await env.apply(helmrelease("web", values={"mode": "two"}))
        await env.until(key, "Ready", "True", "UpgradeSucceeded")
        assert [(r.revision, r.status) for r in await env.history("web")] == [
            (1, "superseded"),  # unlocked as failed, then superseded by the upgrade
            (2, "deployed"),
        ]
        events = [(e.reason, e.message) for e in await env.events(key)]
        assert (
            "PendingRelease",
            "Unlocked Helm release default/web.v1 with chart demo@0.1.0 in pending-upgrade state",
        ) in events
