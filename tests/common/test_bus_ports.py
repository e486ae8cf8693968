"""The bus through the narrow ports reconcilers take, and the parts of each
concern test_bus.py leaves out: Secrets beside ConfigMaps, listings of empty
and full buckets, heartbeat groups."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from fluxbus_common import subjects
from fluxbus_common.bus import Bus
from fluxbus_common.events import Event, ObjectReference, Severity
from fluxbus_common.ports import (
    ArtifactStore,
    EventPublisher,
    ObjectStore,
    SecretReader,
    StatusReader,
)


def widget(name: str, interval: str = "1m") -> dict[str, object]:
    return {
        "apiVersion": "test.fluxbus.io/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"interval": interval},
    }


# Each helper sees only its port, as a reconciler does (mypy proves that Bus
# satisfies every port in fluxbus_common/bus/__init__.py).


async def apply_then_delete(objects: ObjectStore, key: str) -> list[object]:
    created = await objects.apply_object(key, widget("p"))
    stored = await objects.get_object(key)
    deleted = await objects.request_delete(key)
    return [created, stored is not None, deleted, await objects.get_object(key)]


async def read_secret_and_configmap(secrets: SecretReader) -> list[object]:
    return [
        await secrets.get_secret("default", "creds"),
        await secrets.get_configmap("default", "vars"),
    ]


async def store_and_size(artifacts: ArtifactStore, name: str, path: Path) -> list[object]:
    size = await artifacts.put_artifact(name, path)
    stat = await artifacts.artifact_size(name)
    await artifacts.delete_artifact(name)
    return [size, stat, await artifacts.artifact_size(name)]


async def first_status(status: StatusReader, kind: str) -> tuple[str, object]:
    # aclosing: the watch is an async generator; close it rather than leave it to GC
    async with contextlib.aclosing(status.watch_status(kind)) as changes:
        async for change in changes:
            return change.key, change.value
    raise AssertionError("the status watch ended")


async def publish(events: EventPublisher, message: str) -> None:
    await events.publish_event(
        Event(
            involved_object=ObjectReference(kind="Widget", namespace="default", name="p"),
            severity=Severity.INFO,
            message=message,
            reason="Test",
            reporting_controller="test",
        )
    )


async def test_a_bus_serves_every_port(bus: Bus, tmp_path: Path) -> None:
    assert await apply_then_delete(bus, "widget.default.p") == ["created", True, True, None]

    await bus.put_secret("default", "creds", {"data": {"token": "dG9r"}})
    await bus.put_configmap("default", "vars", {"data": {"region": "eu"}})
    assert await read_secret_and_configmap(bus) == [
        {"data": {"token": "dG9r"}},
        {"data": {"region": "eu"}},
    ]

    src = tmp_path / "a.tar.gz"
    src.write_bytes(b"artifact")
    assert await store_and_size(bus, "widget/default/p/x.tar.gz", src) == [8, 8, None]

    await bus.put_status("widget.default.p", {"observedGeneration": 1}, 0)
    assert await first_status(bus, "Widget") == ("widget.default.p", {"observedGeneration": 1})

    await publish(bus, "through the port")
    assert [e.message for e in await bus.recent_events()] == ["through the port"]


async def test_secrets_and_configmaps_share_a_bucket_but_list_apart(bus: Bus) -> None:
    assert await bus.put_secret("default", "creds", {"data": {"a": "MQ=="}}) == "created"
    assert await bus.put_secret("default", "creds", {"data": {"a": "MQ=="}}) == "unchanged"
    assert await bus.put_secret("default", "creds", {"data": {"a": "Mg=="}}) == "configured"
    assert await bus.put_configmap("default", "creds", {"data": {"a": "1"}}) == "created"

    assert [e.key for e in await bus.list_secrets()] == [subjects.secret_key("default", "creds")]
    assert [e.key for e in await bus.list_configmaps()] == [
        subjects.configmap_key("default", "creds")
    ]

    await bus.delete_secret("default", "creds")
    assert await bus.get_secret("default", "creds") is None
    assert await bus.get_configmap("default", "creds") == {"data": {"a": "1"}}
    await bus.delete_configmap("default", "creds")
    assert await bus.list_configmaps() == []


async def test_a_listing_ends_on_an_empty_kind_and_returns_every_key_of_a_full_one(
    bus: Bus,
) -> None:
    assert await bus.list_objects("widget") == []
    keys = [subjects.object_key("Widget", "default", f"w{i:03}") for i in range(150)]
    await asyncio.gather(*(bus.apply_object(k, widget(k)) for k in keys))
    listed = await bus.list_objects("widget")
    assert [e.key for e in listed] == sorted(keys)
    assert await bus.list_objects("gadget") == []


async def test_a_watch_marks_the_end_of_no_initial_values_at_once(bus: Bus) -> None:
    async with contextlib.aclosing(bus.watch_objects("widget", mark_initial=True)) as changes:
        async for change in changes:
            assert change.key == ""  # the marker, not a value
            break


async def test_heartbeats_list_live_members_and_a_ttl_of_zero_leaves(bus: Bus) -> None:
    group = subjects.members_key("svc", "widget")
    assert await bus.heartbeat(group, "a", ttl=30) == ["a"]
    assert await bus.heartbeat(group, "b", ttl=30) == ["a", "b"]
    assert await bus.heartbeat(group, "a", ttl=0) == ["b"]

    leases = [subjects.lease_key("svc", "widget", s) for s in range(2)]
    assert await bus.acquire_lease(leases[1], "b", ttl=30)
    assert await bus.lease_holders(leases) == {leases[1]: "b"}
