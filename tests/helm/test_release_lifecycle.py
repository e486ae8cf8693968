"""A HelmRelease's life with Helm's real engine, kubelite and nats-server:
installed from its generated HelmChart, upgraded when its values change, left
alone when nothing changed, kept when a value breaks rendering, and
uninstalled when deleted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helm_helpers import chart, condition, helmrelease, running

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
