"""A YAML bomb pushed to a repository (issue #11, "Safety"): the Kustomization turns
Ready=False naming the file and the limit, kustomize is never started on it, and the
cluster keeps the last good state; the next good commit applies as usual."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconcile_helpers import condition, configmap, kustomization, manifests, running
from test_build_bounds import LAUGHS

from fluxbus_common.bus import Bus
from fluxbus_kustomize.settings import KustomizeSettings

FAST = KustomizeSettings(dependency_requeue=0.5, min_timeout=1.0)


async def test_a_yaml_bomb_fails_the_build_and_keeps_the_last_good_state(
    bus: Bus, kubelite: Any, tmp_path: Path
) -> None:
    good = {"app/cm.yaml": manifests(configmap("settings", "default", colour="blue"))}
    async with running(bus, kubelite, tmp_path / "env", settings=FAST) as env:
        first = await env.publish(good)
        key = await env.apply(kustomization("app", path="./app", retryInterval="1s"))
        await env.ready(key, first)
        renders = env.reconciler.builder.renders

        bombed = await env.publish({**good, "app/lol.yaml": LAUGHS})
        status = await env.failing(key, "BuildFailed")
        message = condition(status)["message"]
        assert "app/lol.yaml: line " in message
        assert "aliases expand to more than 10000 nodes (alias expansion limit)" in message
        assert status["lastAttemptedRevision"] == bombed
        assert status["lastAppliedRevision"] == first
        assert env.reconciler.builder.renders == renders  # kustomize never ran on the bomb
        assert env.get("configmap", "settings")["data"] == {"colour": "blue"}

        fixed = await env.publish(
            {"app/cm.yaml": manifests(configmap("settings", "default", colour="green"))}
        )
        await env.ready(key, fixed)
        assert env.get("configmap", "settings")["data"] == {"colour": "green"}
