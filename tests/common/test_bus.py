"""The NATS adapter against a real nats-server: objects, CAS status writes,
artifacts, events, leases and reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from pathlib import Path

import pytest

from fluxbus_common.bus import Bus
from fluxbus_common.events import Event, ObjectReference, Severity
from fluxbus_common.ports import RevisionConflict
from fluxbus_common.settings import BusSettings
from fluxbus_common.testing.plugin import NatsServer, wait_for


def widget(name: str, interval: str = "1m", **spec: object) -> dict:
    return {
        "apiVersion": "test.fluxbus.io/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"interval": interval, **spec},
    }


async def test_apply_creates_then_reports_unchanged_and_bumps_generation_on_spec_change(bus: Bus):
    key = "widget.default.a"
    assert await bus.apply_object(key, widget("a")) == "created"
    first = await bus.get_object(key)
    assert first is not None
    assert first.value["metadata"]["generation"] == 1
    assert first.value["metadata"]["uid"]
    assert await bus.apply_object(key, widget("a")) == "unchanged"
    doc = widget("a")
    doc["metadata"]["labels"] = {"team": "x"}
    assert await bus.apply_object(key, doc) == "configured"
    labelled = await bus.get_object(key)
    assert labelled is not None and labelled.value["metadata"]["generation"] == 1
    assert await bus.apply_object(key, widget("a", interval="2m")) == "configured"
    changed = await bus.get_object(key)
    assert changed is not None
    assert changed.value["metadata"]["generation"] == 2
    assert changed.value["metadata"]["uid"] == first.value["metadata"]["uid"]


async def test_status_history_keeps_past_revisions_oldest_first_with_their_times(bus: Bus):
    assert await bus.status_history() == []
    first = await bus.put_status("widget.default.a", {"step": 1}, 0)
    await bus.put_status("widget.default.a", {"step": 2}, first)
    await bus.put_status("widget.default.b", {"step": 1}, 0)
    one = await bus.status_history("widget.default.a")
    assert [(r.key, r.value, r.revision) for r in one] == [
        ("widget.default.a", {"step": 1}, first),
        ("widget.default.a", {"step": 2}, first + 1),
    ]
    assert one[0].created <= one[1].created
    every = await bus.status_history()
    assert [(r.key, r.value) for r in every] == [
        ("widget.default.a", {"step": 1}),
        ("widget.default.a", {"step": 2}),
        ("widget.default.b", {"step": 1}),
    ]


async def test_status_compare_and_set_rejects_a_stale_revision(bus: Bus):
    key = "widget.default.cas"
    rev = await bus.put_status(key, {"observedGeneration": 1}, 0)
    with pytest.raises(RevisionConflict):
        await bus.put_status(key, {"observedGeneration": 9}, 0)  # create when it exists
    rev2 = await bus.put_status(key, {"observedGeneration": 2}, rev)
    with pytest.raises(RevisionConflict):
        await bus.put_status(key, {"observedGeneration": 3}, rev)  # stale
    entry = await bus.get_status(key)
    assert entry is not None
    assert entry.value == {"observedGeneration": 2}
    assert entry.revision == rev2


async def test_two_writers_racing_on_one_revision_only_one_wins(bus: Bus):
    key = "widget.default.race"
    rev = await bus.put_status(key, {"n": 0}, 0)
    results = await asyncio.gather(
        *(bus.put_status(key, {"n": i}, rev) for i in range(1, 9)), return_exceptions=True
    )
    wins = [r for r in results if isinstance(r, int)]
    assert len(wins) == 1
    assert all(isinstance(r, RevisionConflict) for r in results if not isinstance(r, int))


async def test_delete_marks_objects_with_finalizers_and_removes_others(bus: Bus):
    plain = "widget.default.plain"
    await bus.apply_object(plain, widget("plain"))
    assert await bus.request_delete(plain)
    assert await bus.get_object(plain) is None

    guarded = "widget.default.guarded"
    await bus.apply_object(guarded, widget("guarded"))
    entry = await bus.get_object(guarded)
    assert entry is not None
    entry.value["metadata"]["finalizers"] = ["finalizers.fluxcd.io"]
    await bus.update_object(guarded, entry.value, entry.revision)
    assert await bus.request_delete(guarded)
    marked = await bus.get_object(guarded)
    assert marked is not None and marked.value["metadata"]["deletionTimestamp"]
    await bus.remove_object(guarded)
    assert await bus.get_object(guarded) is None
    assert not await bus.request_delete(guarded)


async def test_watch_sends_current_values_then_changes_and_deletions(bus: Bus):
    await bus.apply_object("widget.default.w1", widget("w1"))
    seen: list[tuple[str, bool]] = []

    async def consume() -> None:
        async for change in bus.watch_objects("widget", mark_initial=True):
            seen.append((change.key, change.value is not None))

    task = asyncio.create_task(consume())
    try:
        await wait_for(lambda: ("", False) in seen, message="initial marker")
        assert seen[0] == ("widget.default.w1", True)
        await bus.apply_object("widget.default.w2", widget("w2"))
        await bus.request_delete("widget.default.w1")
        await wait_for(lambda: ("widget.default.w1", False) in seen, message="deletion")
        assert ("widget.default.w2", True) in seen
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_artifacts_stream_in_and_out_intact(bus: Bus, tmp_path: Path):
    src = tmp_path / "a.tar.gz"
    payload = bytes(range(256)) * 4096 * 3  # 3 MiB: several object-store chunks
    src.write_bytes(payload)
    name = "gitrepository/default/app/" + hashlib.sha256(payload).hexdigest() + ".tar.gz"
    assert await bus.put_artifact(name, src) == len(payload)
    dest = tmp_path / "out.tar.gz"
    await bus.get_artifact(name, dest)
    assert dest.read_bytes() == payload
    assert await bus.list_artifacts("gitrepository/default/app/") == [name]
    await bus.delete_artifact(name)
    assert await bus.list_artifacts("gitrepository/default/app/") == []
    with pytest.raises(KeyError):
        await bus.get_artifact(name, tmp_path / "missing")


async def test_events_are_durable_for_a_consumer_that_was_away(bus: Bus):
    def ev(i: int) -> Event:
        return Event(
            involved_object=ObjectReference(kind="Widget", namespace="default", name="e"),
            severity=Severity.INFO,
            message=f"m{i}",
            reason="Test",
            reporting_controller="test",
        )

    await bus.publish_event(ev(1))
    got: list[str] = []

    async def receive_one(ack: bool) -> None:
        async with contextlib.aclosing(bus.events(durable="notifier", ack_wait=0.5)) as deliveries:
            async for delivery in deliveries:
                got.append(delivery.event.message)
                if ack:
                    await delivery.ack()
                return

    await receive_one(ack=False)  # went away before acknowledging: delivered again
    await receive_one(ack=True)
    await bus.publish_event(ev(2))  # published while nobody listens
    await receive_one(ack=True)
    assert got == ["m1", "m1", "m2"]
    history = await bus.recent_events()
    assert [e.message for e in history] == ["m1", "m2"]
    assert history[0].model_dump(by_alias=True)["involvedObject"]["kind"] == "Widget"


async def test_a_lease_has_one_holder_until_it_expires_or_is_released(bus: Bus):
    assert await bus.acquire_lease("svc.0", "a", ttl=0.3)
    assert not await bus.acquire_lease("svc.0", "b", ttl=0.3)
    assert await bus.acquire_lease("svc.0", "a", ttl=0.3)  # renewal
    await wait_for(lambda: bus.acquire_lease("svc.0", "b", ttl=5), timeout=5, message="expiry")
    assert not await bus.acquire_lease("svc.0", "a", ttl=5)
    await bus.release_lease("svc.0", "b")
    assert await bus.acquire_lease("svc.0", "a", ttl=5)


async def test_bus_recovers_after_nats_restarts(nats_server: NatsServer, bus_settings: BusSettings):
    bus = await Bus.connect(bus_settings, "restart")
    try:
        await bus.apply_object("widget.default.r", widget("r"))
        nats_server.stop()
        await wait_for(lambda: not bus.connected, message="disconnect")
        nats_server.start()
        await wait_for(lambda: bus.connected, timeout=15, message="reconnect")
        entry = await bus.get_object("widget.default.r")
        assert entry is not None  # JetStream data survived in its store dir
        assert await bus.apply_object("widget.default.r2", widget("r2")) == "created"
    finally:
        await bus.close()
