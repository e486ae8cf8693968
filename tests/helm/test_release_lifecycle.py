"""A HelmRelease's life with Helm's real engine, kubelite and nats-server:
installed from its generated HelmChart, upgraded when its values change, left
alone when nothing changed, kept when a value breaks rendering, and
uninstalled when deleted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helmrelease_helpers import chart, condition, helmrelease, running

from fluxbus_common import subjects
from fluxbus_common.bus import Bus
from fluxbus_common.testing.plugin import wait_for


async def test_release_is_installed_from_its_generated_helmchart(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path) as env:
        key = await env.apply(helmrelease("web", values={"mode": "git"}))
        await env.publish_chart("default", "default-web", chart())
        st = await env.ready(key)

        ready = condition(st)
        assert ready["reason"] == "InstallSucceeded"
        assert ready["message"] == (
            "Helm install succeeded for release default/web.v1 with chart demo@0.1.0"
        )
        assert condition(st, "Released")["status"] == "True"
        assert st["helmChart"] == "default/default-web"
        assert st["storageNamespace"] == "default"
        assert st["lastAttemptedRevision"] == "0.1.0"
        assert st["lastAttemptedReleaseAction"] == "install"
        snap = st["history"][0]
        assert (snap["chartName"], snap["chartVersion"], snap["version"], snap["status"]) == (
            "demo",
            "0.1.0",
            1,
            "deployed",
        )
        assert snap["configDigest"] == st["lastAttemptedConfigDigest"]
        cm = env.get("configmap", "web-settings")
        assert cm is not None and cm["data"]["mode"] == "git"
        helmchart = await bus.get_object(subjects.object_key("HelmChart", "default", "default-web"))
        assert helmchart is not None
        assert helmchart.value["metadata"]["labels"]["helm.toolkit.fluxcd.io/name"] == "web"
        assert [r.revision for r in await env.history("web")] == [1]
        reasons = [e.reason for e in await env.events(key)]
        assert "InstallSucceeded" in reasons


async def _installed(env: Any, name: str = "web", **spec: Any) -> str:
    key = await env.apply(helmrelease(name, **spec))
    await env.publish_chart("default", f"default-{name}", chart())
    await env.ready(key)
    return key


async def test_changed_values_upgrade_and_unchanged_values_make_no_new_revision(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path) as env:
        key = await _installed(env, values={"mode": "one"})
        await env.apply(helmrelease("web", values={"mode": "two"}))
        st = await env.until(key, "Ready", "True", "UpgradeSucceeded")

        assert condition(st)["message"] == (
            "Helm upgrade succeeded for release default/web.v2 with chart demo@0.1.0"
        )
        assert env.get("configmap", "web-settings")["data"]["mode"] == "two"
        assert [s["version"] for s in st["history"]] == [2, 1]
        assert [s["status"] for s in st["history"]] == ["deployed", "superseded"]

        again = await env.reconciled(key)
        assert condition(again)["status"] == "True"
        assert [(r.revision, r.status) for r in await env.history("web")] == [
            (1, "superseded"),
            (2, "deployed"),
        ]


async def test_a_value_that_breaks_rendering_names_the_template_and_keeps_the_release(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path) as env:
        key = await _installed(env, values={"mode": "good"})
        await env.apply(helmrelease("web", values={"mode": "bad", "fail": True}))
        st = await env.until(key, "Ready", "False", "UpgradeFailed")

        message = condition(st)["message"]
        assert message.startswith(
            "Helm upgrade failed for release default/web with chart demo@0.1.0"
        )
        assert "demo/templates/guard.yaml" in message
        assert "values.fail is set" in message
        assert condition(st, "Reconciling")["status"] == "True"  # retried, not stalled
        assert [(r.revision, r.status) for r in await env.history("web")] == [(1, "deployed")]
        assert env.get("configmap", "web-settings")["data"]["mode"] == "good"
        assert not st.get("upgradeFailures")  # nothing reached Helm's storage


async def test_a_failed_upgrade_is_rolled_back_to_the_previous_release(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    remediation = {"remediation": {"remediateLastFailure": True}}
    async with running(bus, kubelite, tmp_path) as env:
        key = await _installed(env, values={"mode": "good"}, upgrade=remediation)
        await env.apply(
            helmrelease("web", values={"mode": "next", "broken": True}, upgrade=remediation)
        )
        st = await env.until(key, "Stalled", "True", "RetriesExceeded")

        remediated = condition(st, "Remediated")
        assert remediated["status"] == "True"
        assert remediated["reason"] == "RollbackSucceeded"
        assert remediated["message"] == (
            "Helm rollback to previous release default/web.v1 with chart demo@0.1.0 succeeded"
        )
        assert condition(st)["status"] == "False"
        assert condition(st, "Released")["reason"] == "UpgradeFailed"
        assert condition(st, "Stalled")["message"] == "Failed to upgrade after 1 attempt(s)"
        assert st["upgradeFailures"] == 1
        assert [(r.revision, r.status) for r in await env.history("web")] == [
            (1, "superseded"),
            (2, "failed"),
            (3, "deployed"),
        ]
        assert env.get("configmap", "web-settings")["data"]["mode"] == "good"
        reasons = [e.reason for e in await env.events(key)]
        assert "UpgradeFailed" in reasons and "RollbackSucceeded" in reasons


async def test_deleting_the_helmrelease_uninstalls_it_and_its_helmchart(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path) as env:
        key = await _installed(env)
        assert await bus.request_delete(key)
        chart_key = subjects.object_key("HelmChart", "default", "default-web")

        async def gone() -> bool:
            return await bus.get_object(key) is None and await bus.get_object(chart_key) is None

        await wait_for(gone, timeout=20, message="HelmRelease and HelmChart removed")
        assert await env.history("web") == []
        assert env.get("configmap", "web-settings") is None
