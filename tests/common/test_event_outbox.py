"""No event is lost on the way in: events emitted while NATS is away wait in the
bus's outbox and reach the stream, in order, with their original timestamps and
exactly once, when it is back; the outbox is bounded and counts what it drops."""

from __future__ import annotations

import collections

import pytest

from fluxbus_common.bus import Bus
from fluxbus_common.bus.events import new_event_id
from fluxbus_common.events import Event, ObjectReference, Severity
from fluxbus_common.metrics import Metrics
from fluxbus_common.runtime import EventRecorder
from fluxbus_common.settings import BusSettings
from fluxbus_common.testing.plugin import NatsServer, wait_for
from fluxbus_common.testing.widgets import Widget, WidgetMeta


def event(i: int) -> Event:
    return Event(
        involved_object=ObjectReference(kind="Widget", namespace="default", name="w"),
        severity=Severity.INFO,
        timestamp=f"2024-05-01T10:00:{i:02d}Z",
        message=f"m{i}",
        reason="ReconciliationSucceeded",
        reporting_controller="test",
    )


async def stored(bus: Bus) -> list[Event]:
    return await bus.recent_events()


async def test_events_emitted_while_nats_is_down_arrive_in_order_with_their_timestamps_once(
    nats_server: NatsServer, bus_settings: BusSettings
):
    bus = await Bus.connect(bus_settings, "outbox")
    try:
        await bus.emit_event(event(0))
        nats_server.stop()
        await wait_for(lambda: not bus.connected, message="disconnect")
        for i in range(1, 6):
            await bus.emit_event(event(i))
        assert bus.outbox.pending == 5
        nats_server.start()
        await wait_for(lambda: bus.outbox.pending == 0, timeout=20, message="outbox flushed")
        events = await stored(bus)
        assert [e.message for e in events] == [f"m{i}" for i in range(6)]
        assert [e.timestamp for e in events] == [event(i).timestamp for i in range(6)]
        assert bus.outbox.dropped == 0
    finally:
        await bus.close()


async def test_an_event_recorder_keeps_reconcile_events_through_a_nats_restart(
    nats_server: NatsServer, bus_settings: BusSettings
):
    """What a reconciler reports during the outage is not dropped (it was: a 5.6 s
    NATS restart lost 4 "ReconciliationSucceeded" events), and reporting never blocks."""
    bus = await Bus.connect(bus_settings, "outbox")
    recorder = EventRecorder(bus, "kustomize-controller", "test")
    widget = Widget(metadata=WidgetMeta(name="app"))
    try:
        nats_server.stop()
        await wait_for(lambda: not bus.connected, message="disconnect")
        ids = [
            await recorder.record(widget, Severity.INFO, "ReconciliationSucceeded", f"applied {i}")
            for i in range(4)
        ]
        nats_server.start()
        await wait_for(lambda: bus.outbox.pending == 0, timeout=20, message="outbox flushed")
        assert [e.message for e in await stored(bus)] == [f"applied {i}" for i in range(4)]
        assert len(set(ids)) == 4
    finally:
        await bus.close()


async def test_the_same_event_id_is_stored_once_however_often_it_is_published(bus: Bus):
    event_id = new_event_id()
    for _ in range(3):
        await bus.publish_event(event(1), event_id=event_id)
    await bus.publish_event(event(2), event_id=new_event_id())
    assert [e.message for e in await stored(bus)] == ["m1", "m2"]


async def test_a_consumer_sees_the_stable_id_the_event_was_published_with(bus: Bus):
    event_id = await bus.emit_event(event(1))
    async for delivery in bus.events(durable="ids"):
        assert delivery.event_id == event_id
        await delivery.ack()
        break


@pytest.mark.parametrize(
    ("limit", "emitted", "kept"),
    [
        pytest.param(3, 5, ["m3", "m4", "m5"], id="over-the-bound-drops-the-oldest"),
        pytest.param(5, 5, ["m1", "m2", "m3", "m4", "m5"], id="at-the-bound-keeps-all"),
    ],
)
async def test_the_outbox_is_bounded_and_counts_what_it_drops(
    nats_server: NatsServer, limit: int, emitted: int, kept: list[str]
):
    settings = BusSettings(url=nats_server.url, outbox_limit=limit)
    bus = await Bus.connect(settings, "bounded")
    metrics = Metrics()
    metrics.track_outbox(bus.outbox)
    try:
        nats_server.stop()
        await wait_for(lambda: not bus.connected, message="disconnect")
        for i in range(1, emitted + 1):
            await bus.emit_event(event(i))
        dropped = emitted - len(kept)
        assert bus.outbox.dropped == dropped
        assert metrics.registry.get_sample_value("fluxbus_events_outbox_dropped_total") == dropped
        assert metrics.registry.get_sample_value("fluxbus_events_outbox_pending") == len(kept)
        nats_server.start()
        await wait_for(lambda: bus.outbox.pending == 0, timeout=20, message="outbox flushed")
        messages = [e.message for e in await stored(bus)]
        assert messages == kept
        assert not [m for m, n in collections.Counter(messages).items() if n > 1]
    finally:
        await bus.close()


async def test_the_bound_is_logged_once_per_outage(
    nats_server: NatsServer, capsys: pytest.CaptureFixture[str]
):
    bus = await Bus.connect(BusSettings(url=nats_server.url, outbox_limit=2), "bounded")
    try:
        nats_server.stop()
        await wait_for(lambda: not bus.connected, message="disconnect")
        for i in range(10):
            await bus.emit_event(event(i))
        out = capsys.readouterr()
        text = out.out + out.err
        assert text.count("event.outbox_full") == 1
        assert text.count("event.publish_failed") == 1
    finally:
        nats_server.start()
        await bus.close()
