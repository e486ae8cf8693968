"""`fluxbus rollback helmrelease`'s service side: the `fluxbus.io/rollback-to`
annotation rolls the release back to an earlier Helm revision (a new revision,
as `helm rollback` makes) and holds there until the annotation is dropped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helmrelease_helpers import chart, condition, helmrelease, running

from fluxbus_common import keys
from fluxbus_common.bus import Bus


async def _drop_annotation(bus: Bus, key: str) -> None:
    stored = await bus.get_object(key)
    assert stored is not None
    doc = json.loads(json.dumps(stored.value))
    doc["metadata"]["annotations"].pop(keys.ROLLBACK_ANNOTATION)
    await bus.update_object(key, doc, stored.revision)


async def test_rollback_to_an_earlier_revision_holds_there_until_released(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path) as env:
        key = await env.apply(helmrelease("web", values={"mode": "one"}))
        await env.publish_chart("default", "default-web", chart())
        await env.ready(key)
        await env.apply(helmrelease("web", values={"mode": "two"}))
        await env.until(key, "Ready", "True", "UpgradeSucceeded")

        token = await env.request(key, **{keys.ROLLBACK_ANNOTATION: "1"})
        st = await env.until(key, "Ready", "True", "RollbackSucceeded")

        assert st["lastHandledReconcileAt"] == token
        assert condition(st)["message"] == (
            "Helm rollback to release default/web.v1 with chart demo@0.1.0 succeeded"
        )
        assert env.get("configmap", "web-settings")["data"]["mode"] == "one"
        stored = await env.history("web")
        assert [(r.revision, r.status) for r in stored][-1] == (3, "deployed")
        assert stored[-1].description == "Rollback to 1"
        assert [s["version"] for s in st["history"]][:2] == [3, 2]

        held = await env.reconciled(key)  # held: no upgrade back to Git's values
        assert condition(held)["reason"] == "RollbackSucceeded", condition(held)
        assert len(await env.history("web")) == 3
        assert env.get("configmap", "web-settings")["data"]["mode"] == "one"

        await _drop_annotation(bus, key)
        back = await env.reconciled(key)
        assert condition(back)["reason"] == "UpgradeSucceeded"
        assert env.get("configmap", "web-settings")["data"]["mode"] == "two"


async def test_a_revision_not_in_the_history_stalls_and_changes_nothing(
    bus: Bus, kubelite: Any, tmp_path: Path
):
    async with running(bus, kubelite, tmp_path) as env:
        key = await env.apply(helmrelease("web", values={"mode": "one"}))
        await env.publish_chart("default", "default-web", chart())
        await env.ready(key)

        await env.request(key, **{keys.ROLLBACK_ANNOTATION: "7"})
        st = await env.until(key, "Stalled", "True", "RollbackFailed")

        assert "cannot roll back to revision 7" in condition(st)["message"]
        assert [r.revision for r in await env.history("web")] == [1]
