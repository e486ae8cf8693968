"""Durable delivery: events from the stream reach the matching Providers at
least once, across notifier restarts and endpoint outages, and never twice
when two replicas share the work."""

from __future__ import annotations

import asyncio
import collections
import dataclasses

from delivery_helpers import (
    FAST,
    alert,
    apply,
    event,
    provider,
    running_notifier,
    until_received,
)
from notify_sink import running_sink

from fluxbus_common.bus import Bus
from fluxbus_common.settings import BusSettings
from fluxbus_common.testing.plugin import wait_for


async def test_a_matching_event_is_posted_with_its_stable_id_and_flux_payload(
    bus: Bus, bus_settings: BusSettings
):
    async with running_sink() as sink:
        await apply(
            bus,
            provider("hook", sink.url()),
            alert("deploys", "hook", sources=[{"kind": "Kustomization", "name": "app"}]),
        )
        async with running_notifier(bus_settings):
            await bus.emit_event(event("other", "not for this alert"))
            event_id = await bus.emit_event(event("app", "applied", revision="main@sha1:abc"))
            await until_received(sink, 1)
        [got] = sink.received
        assert got.event_id == event_id
        assert got.headers["Gotk-Component"] == "kustomize-controller"
        assert got.body["involvedObject"] == {
            "kind": "Kustomization",
            "namespace": "default",
            "name": "app",
        }
        assert got.body["message"] == "applied"
        assert got.body["metadata"]["revision"] == "main@sha1:abc"
        assert sink.messages() == ["applied"]


async def test_events_published_while_the_notifier_was_down_are_delivered_after_restart(
    bus: Bus, bus_settings: BusSettings
):
    async with running_sink() as sink:
        await apply(bus, provider("hook", sink.url()), alert("all", "hook"))
        async with running_notifier(bus_settings):
            await bus.emit_event(event("app", "before the restart"))
            await until_received(sink, 1)
        for i in range(3):  # nobody consumes these now
            await bus.emit_event(event("app", f"while down {i}"))
        async with running_notifier(bus_settings, instance="notifier-1"):
            await until_received(sink, 4)
        assert sink.messages() == ["before the restart"] + [f"while down {i}" for i in range(3)]


async def test_an_endpoint_outage_loses_nothing_events_are_retried_until_it_is_back(
    bus: Bus, bus_settings: BusSettings
):
    async with running_sink() as sink:
        await apply(bus, provider("hook", sink.url()), alert("all", "hook"))
        sink.fail_next = 6  # 503 for the first six requests, then OK
        async with running_notifier(bus_settings):
            for i in range(3):
                await bus.emit_event(event("app", f"rollout {i}"))
            await until_received(sink, 3)
        assert sink.refused == 6
        assert sink.messages() == [f"rollout {i}" for i in range(3)]  # one object: in order


async def test_two_replicas_share_the_events_and_never_send_one_twice(
    bus: Bus, bus_settings: BusSettings
):
    async with running_sink() as sink:
        await apply(bus, provider("hook", sink.url()), alert("all", "hook"))
        async with (
            running_notifier(bus_settings, FAST, instance="a") as (_, first),
            running_notifier(bus_settings, FAST, instance="b") as (_, second),
        ):
            ids = [await bus.emit_event(event(f"app-{i % 10}", f"event {i}")) for i in range(60)]
            await until_received(sink, 60)
            # Nothing more arrives: the stream has no event waiting for either replica.
            await wait_for(lambda: not first._held and not second._held, message="all acked")
            assert first.handled > 0 and second.handled > 0  # both took part
        by_id = collections.Counter(r.event_id for r in sink.received)
        by_body = collections.Counter(r.message for r in sink.received)
        assert set(by_id) == set(ids)
        assert max(by_id.values()) == 1
        assert max(by_body.values()) == 1


async def test_a_long_delivery_is_not_handed_to_the_other_replica(
    bus: Bus, bus_settings: BusSettings
):
    """The endpoint answers only after the ack wait has passed several times: the
    replica holding the event reports progress, so the stream never redelivers it."""
    settings = dataclasses.replace(FAST, ack_wait=0.6)
    async with running_sink() as sink:
        await apply(bus, provider("hook", sink.url()), alert("all", "hook"))
        sink.hold = asyncio.Event()
        async with (
            running_notifier(bus_settings, settings, instance="a") as (_, first),
            running_notifier(bus_settings, settings, instance="b") as (_, second),
        ):
            await bus.emit_event(event("app", "slow endpoint"))
            await wait_for(lambda: sink.arrived == 1, message="the request")
            await wait_for(
                lambda: first.progress_reports + second.progress_reports >= 5,
                message="progress reported for longer than the ack wait",
            )
            sink.hold.set()
            await until_received(sink, 1)
            await wait_for(lambda: first.handled + second.handled == 1, message="acked")
        assert sink.arrived == 1
