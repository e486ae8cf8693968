"""`fluxbus reconcile`, `suspend`, `resume` and `delete` against a stand-in controller
that answers reconcile requests the way the runtime does."""

from __future__ import annotations

import asyncio

from cli_helpers import MANIFESTS, Cli, controller, heartbeat

from fluxbus_common import keys
from fluxbus_common.bus import Bus

KS = "kustomization.flux-system.podinfo"
GIT = "gitrepository.flux-system.podinfo"


async def apply_podinfo(cli: Cli) -> None:
    result = await cli("apply", "-f", str(MANIFESTS / "podinfo.yaml"))
    assert result.code == 0, result.stderr


async def test_reconcile_waits_for_the_request_to_be_handled_and_reports_the_revision(
    fluxbus: Cli, cli: Cli, bus: Bus
):
    await apply_podinfo(cli)
    async with controller(bus, "kustomization") as fake:
        result = await fluxbus("reconcile", "ks", "podinfo")

    assert result.code == 0, result.stderr
    assert "✔ applied revision main@sha1:4b2c5e0d" in result.stderr
    stored = await bus.get_object(KS)
    status = await bus.get_status(KS)
    assert stored is not None and status is not None
    requested = stored.value["metadata"]["annotations"][keys.RECONCILE_REQUESTED_AT]
    assert status.value["lastHandledReconcileAt"] == requested
    assert fake.handled == [f"{KS}@{requested}"]


async def test_reconcile_exits_non_zero_with_the_message_when_not_ready(cli: Cli, bus: Bus):
    await apply_podinfo(cli)
    async with controller(bus, "kustomization", ready=False, message="kustomize build failed"):
        result = await cli("reconcile", "kustomization", "podinfo")

    assert result.code == 1
    assert "✗ kustomize build failed" in result.stderr


async def test_reconcile_says_at_once_that_no_controller_is_alive(cli: Cli):
    await apply_podinfo(cli)
    result = await cli("reconcile", "ks", "podinfo", "--timeout", "10m")
    assert result.code == 1
    assert (
        "✗ no live instance of the kustomize service reconciles Kustomization objects "
        "(is fluxbus-kustomize running? see `fluxbus check`)"
    ) in result.stderr
    assert "annotating" not in result.stderr  # nothing was requested


async def test_reconcile_times_out_when_a_live_controller_does_not_answer(cli: Cli, bus: Bus):
    await apply_podinfo(cli)
    async with heartbeat(bus, "kustomization"):
        result = await cli("reconcile", "ks", "podinfo", "--timeout", "300ms")
    assert result.code == 1
    assert "timed out after 0.3s waiting for Kustomization 'flux-system/podinfo'" in result.stderr


async def test_reconcile_fails_when_the_controller_goes_away_while_it_waits(cli: Cli, bus: Bus):
    await apply_podinfo(cli)
    async with heartbeat(bus, "kustomization", ttl=2):
        result = await cli("reconcile", "ks", "podinfo", "--timeout", "1m")
    assert result.code == 1
    assert "its last instance went away" in result.stderr


async def test_reconcile_with_source_fetches_the_git_repository_first(cli: Cli, bus: Bus):
    await apply_podinfo(cli)
    async with controller(bus, "gitrepository", "kustomization") as fake:
        result = await cli("reconcile", "ks", "podinfo", "--with-source")

    assert result.code == 0, result.stderr
    assert "✔ fetched revision main@sha1:4b2c5e0d" in result.stderr
    assert "✔ applied revision main@sha1:4b2c5e0d" in result.stderr
    assert fake.handled is not None
    assert [h.split("@")[0] for h in fake.handled] == [GIT, KS]


async def test_reconcile_refuses_a_suspended_object_and_a_missing_one(cli: Cli):
    await apply_podinfo(cli)
    await cli("suspend", "ks", "podinfo")
    suspended = await cli("reconcile", "ks", "podinfo", "--timeout", "1s")
    missing = await cli("reconcile", "gitrepo", "nope")
    assert suspended.code == 1 and "is suspended" in suspended.stderr
    assert missing.code == 1 and "GitRepository 'flux-system/nope' not found" in missing.stderr


async def test_suspend_sets_spec_suspend_with_the_reason_and_bumps_the_generation(
    cli: Cli, bus: Bus
):
    await apply_podinfo(cli)
    result = await cli("suspend", "ks", "podinfo", "--reason", "maintenance window")

    assert result.code == 0, result.stderr
    stored = await bus.get_object(KS)
    assert stored is not None
    assert stored.value["spec"]["suspend"] is True
    assert stored.value["metadata"]["annotations"][keys.SUSPENDED_REASON_ANNOTATION] == (
        "maintenance window"
    )
    assert stored.value["metadata"]["generation"] == 2
    listed = await cli("get", "ks")
    assert "True" in listed.stdout.splitlines()[1].split()


async def test_resume_clears_suspend_and_waits_for_the_reconcile(cli: Cli, bus: Bus):
    await apply_podinfo(cli)
    await cli("suspend", "ks", "podinfo", "--reason", "maintenance")
    async with controller(bus, "kustomization"):
        result = await cli("resume", "ks", "podinfo")

    assert result.code == 0, result.stderr
    assert "✔ applied revision" in result.stderr
    stored = await bus.get_object(KS)
    assert stored is not None
    assert stored.value["spec"]["suspend"] is False
    assert keys.SUSPENDED_REASON_ANNOTATION not in stored.value["metadata"]["annotations"]


async def test_secrets_cannot_be_suspended(cli: Cli):
    result = await cli("suspend", "secret", "webhook-token")
    assert result.code == 1
    assert "secrets cannot be suspended" in result.stderr


async def test_delete_by_name_removes_the_object(cli: Cli, bus: Bus):
    await apply_podinfo(cli)
    result = await cli("delete", "--silent", "gitrepository", "podinfo")
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == "gitrepository/flux-system/podinfo deleted"
    assert await bus.get_object(GIT) is None
    assert await bus.get_object(KS) is not None
    again = await cli("delete", "--silent", "gitrepository", "podinfo")
    assert again.code == 1 and "not found" in again.stderr


async def test_delete_from_files_removes_every_object_they_name(cli: Cli, bus: Bus):
    await cli("apply", "-f", str(MANIFESTS))
    result = await cli("delete", "--silent", "-f", str(MANIFESTS / "notifications"))
    assert result.code == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == [
        "alert/flux-system/slack deleted",
        "provider/flux-system/slack-bot deleted",
        "receiver/flux-system/github-receiver deleted",
        "secret/flux-system/webhook-token deleted",
    ]
    assert [e.key.split(".")[0] for e in await bus.list_objects()] == [
        "gitrepository",
        "imagepolicy",
        "imagerepository",
        "kustomization",
    ]
    assert await bus.get_secret("flux-system", "webhook-token") is None


async def finalize_when_marked(bus: Bus, key: str) -> None:
    """What an owner does: on deletionTimestamp, clean up, then remove the key."""
    async for change in bus.watch_objects(key.split(".")[0]):
        if change.key == key and change.value and change.value["metadata"].get("deletionTimestamp"):
            await bus.remove_object(key)
            return


async def add_finalizer(bus: Bus, key: str) -> None:
    entry = await bus.get_object(key)
    assert entry is not None
    entry.value["metadata"]["finalizers"] = [keys.FINALIZER]
    await bus.update_object(key, entry.value, entry.revision)


async def test_delete_waits_until_the_owner_has_finalized(cli: Cli, bus: Bus):
    await apply_podinfo(cli)
    await add_finalizer(bus, KS)
    owner = asyncio.create_task(finalize_when_marked(bus, KS))
    try:
        result = await cli("delete", "--silent", "ks", "podinfo")
    finally:
        await asyncio.wait_for(owner, 10)
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == "kustomization/flux-system/podinfo deleted"
    assert await bus.get_object(KS) is None


async def test_delete_with_wait_false_only_marks_an_object_being_finalized(
    fluxbus: Cli, cli: Cli, bus: Bus
):
    await apply_podinfo(cli)
    await add_finalizer(bus, KS)
    result = await fluxbus("delete", "--silent", "ks", "podinfo", "--wait=false")
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == "kustomization/flux-system/podinfo marked for deletion"
    stored = await bus.get_object(KS)
    assert stored is not None and stored.value["metadata"]["deletionTimestamp"]


async def test_delete_gives_up_when_nobody_finalizes(cli: Cli, bus: Bus):
    await apply_podinfo(cli)
    await add_finalizer(bus, KS)
    result = await cli("delete", "--silent", "ks", "podinfo", "--timeout", "200ms")
    assert result.code == 1
    assert "still being finalized after 0.2s" in result.stderr
