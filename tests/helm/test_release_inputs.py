"""What a HelmRelease takes in: values from ConfigMaps and Secrets (in the
cluster or the fluxbus store, `targetPath`, `optional`), an existing HelmChart
through `chartRef`, and refusals of what fluxbus does not serve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helmrelease_helpers import chart, condition, helmrelease, running

from fluxbus_common import subjects
from fluxbus_common.bus import Bus
from fluxbus_common.testing.plugin import wait_for


async def test_values_come_from_configmaps_and_secrets_in_order_then_inline(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    kubelite.kubectl("create", "secret", "generic", "tier", "--from-literal=tier=gold", check=True)
    await bus.put_configmap(
        "default",
        "base",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "base", "namespace": "default"},
            "data": {"values.yaml": "mode: from-configmap\nreplicaCount: 3\n"},
        },
    )
    values_from = [
        {"kind": "ConfigMap", "name": "base"},
        {"kind": "Secret", "name": "tier", "valuesKey": "tier", "targetPath": "owner"},
        {"kind": "ConfigMap", "name": "absent", "optional": True},
    ]
    async with running(bus, kubelite, tmp_path) as env:
        key = await env.apply(
            helmrelease("web", valuesFrom=values_from, values={"replicaCount": 5})
        )
        await env.publish_chart("default", "default-web", chart())
        await env.ready(key)

        settings = env.get("configmap", "web-settings")
        assert settings["data"] == {"mode": "from-configmap", "replicas": "5"}
        assert env.get("configmap", "web-guard")["data"]["owner"] == "gold"
        (release,) = await env.history("web")
        assert release.config == {"mode": "from-configmap", "replicaCount": 5, "owner": "gold"}


async def test_a_missing_values_reference_fails_with_fluxs_message(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path) as env:
        key = await env.apply(
            helmrelease("web", valuesFrom=[{"kind": "Secret", "name": "nowhere"}])
        )
        await env.publish_chart("default", "default-web", chart())
        st = await env.until(key, "Ready", "False", "ValuesError")
        assert condition(st)["message"] == (
            "could not resolve Secret chart values reference 'default/nowhere' with key "
            "'values.yaml': resource not found"
        )


async def test_chartref_uses_an_existing_helmchart_and_refuses_ocirepository(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path) as env:
        await env.publish_chart("default", "shared", chart(version="1.2.3"), wait_object=False)
        key = await env.apply(
            helmrelease("api", chart=None, chartRef={"kind": "HelmChart", "name": "shared"})
        )
        st = await env.ready(key)
        assert st["history"][0]["chartVersion"] == "1.2.3"
        assert st["helmChart"] == "default/shared"

        oci = await env.apply(
            helmrelease("oci", chart=None, chartRef={"kind": "OCIRepository", "name": "podinfo"})
        )
        st = await env.until(oci, "Stalled", "True")
        assert "kind OCIRepository is not served by fluxbus yet" in condition(st)["message"]


async def test_without_the_helm_extra_every_helmrelease_is_stalled_saying_so(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path, helm=False) as env:
        key = await env.apply(helmrelease("web"))
        st = await env.until(key, "Stalled", "True")
        assert condition(st)["status"] == "False"
        assert condition(st)["message"] == (
            "Helm kinds need the helm extra: pip install 'fluxbus[helm]'"
        )
        assert (
            await bus.get_object(subjects.object_key("HelmChart", "default", "default-web")) is None
        )


async def test_target_namespace_holds_the_release_and_its_records(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    kubelite.ensure_namespace("apps")
    async with running(bus, kubelite, tmp_path) as env:
        key = await env.apply(helmrelease("web", targetNamespace="apps"))
        await env.publish_chart("default", "default-web", chart())
        st = await env.ready(key)
        assert condition(st)["message"] == (
            "Helm install succeeded for release apps/apps-web.v1 with chart demo@0.1.0"
        )
        assert st["storageNamespace"] == "apps"
        assert env.get("configmap", "apps-web-settings", "-n", "apps") is not None
        assert [r.revision for r in await env.history("apps-web", "apps")] == [1]

        other = await env.apply(
            helmrelease("other", targetNamespace="apps", storageNamespace="default")
        )
        st = await env.until(other, "Stalled", "True", "InvalidSpec")
        assert "spec.storageNamespace other than the release namespace" in condition(st)["message"]


async def test_a_new_release_name_uninstalls_the_old_release_first(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path) as env:
        key = await env.apply(helmrelease("web"))
        await env.publish_chart("default", "default-web", chart())
        await env.ready(key)
        await env.apply(helmrelease("web", releaseName="site"))

        async def site() -> dict[str, Any] | None:
            st = await env.status(key)
            return st if "default/site.v1" in condition(st).get("message", "") else None

        st = await wait_for(site, message="release site installed")
        assert condition(st)["reason"] == "InstallSucceeded"
        assert await env.history("web") == []
        assert env.get("configmap", "web-settings") is None
        assert env.get("configmap", "site-settings") is not None
