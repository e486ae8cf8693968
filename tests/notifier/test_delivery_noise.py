"""Noise control: the dedup window, on-change Alerts, and suspended Alerts and
Providers. "Nothing was sent" is observed without waiting a fixed time: a
marker event about the same object follows, to another endpoint, and events of
one object are handled in order."""

from __future__ import annotations

import pytest
from delivery_helpers import FAST, alert, apply, event, provider, running_notifier, until_received
from notify_sink import running_sink

from fluxbus_common import keys
from fluxbus_common.bus import Bus
from fluxbus_common.events import Severity
from fluxbus_common.settings import BusSettings
from fluxbus_notifier.logic.noise import RESOLVED_KEY
from fluxbus_notifier.settings import NotifierSettings

MARKER = "marker"


async def with_marker(bus: Bus, sink_url: str) -> None:
    """A second Provider/Alert that receives only the marker events."""
    await apply(
        bus, provider("markers", sink_url), alert("markers", "markers", inclusionList=[MARKER])
    )


async def test_identical_events_inside_the_window_are_sent_once(
    bus: Bus, bus_settings: BusSettings
):
    async with running_sink() as sink:
        await apply(bus, provider("hook", sink.url()), alert("all", "hook", exclusionList=[MARKER]))
        await with_marker(bus, sink.url("/markers"))
        async with running_notifier(bus_settings):
            for _ in range(3):
                await bus.emit_event(event("app", "health check failed", revision="sha1:1"))
            await bus.emit_event(event("app", "health check failed", revision="sha1:2"))
            await bus.emit_event(event("app", "health check failed", reason="Other"))
            await bus.emit_event(event("app", MARKER))
            await until_received(sink, 1, "/markers")
        assert sink.messages("/hook") == ["health check failed"] * 3  # sha1:1, sha1:2, Other


async def test_a_zero_window_sends_every_event(bus: Bus, bus_settings: BusSettings):
    settings = NotifierSettings(
        retry_base=FAST.retry_base, retry_cap=FAST.retry_cap, dedup_window=0
    )
    async with running_sink() as sink:
        await apply(bus, provider("hook", sink.url()), alert("all", "hook"))
        async with running_notifier(bus_settings, settings):
            for _ in range(3):
                await bus.emit_event(event("app", "same"))
            await until_received(sink, 3)


async def test_on_change_sends_a_failure_once_then_one_resolved_message(
    bus: Bus, bus_settings: BusSettings
):
    on_change = {keys.NOTIFY_ANNOTATION: keys.NOTIFY_ON_CHANGE}
    async with running_sink() as sink:
        await apply(
            bus,
            provider("hook", sink.url()),
            alert("changes", "hook", annotations=on_change, exclusionList=[MARKER]),
        )
        await with_marker(bus, sink.url("/markers"))
        error = Severity.ERROR
        async with running_notifier(bus_settings):
            # distinct revisions, so the dedup window lets each through to the rule
            await bus.emit_event(event("app", "fine", revision="1"))  # nothing failed yet
            await bus.emit_event(event("app", "apply failed", severity=error, revision="2"))
            await bus.emit_event(event("app", "apply failed", severity=error, revision="3"))
            await bus.emit_event(event("app", "fixed", revision="4"))
            await bus.emit_event(event("app", "still fine", revision="5"))
            await bus.emit_event(event("app", MARKER))
            await until_received(sink, 1, "/markers")
        assert sink.messages("/hook") == ["apply failed", "fixed"]
        resolved = sink.received[1].body
        assert resolved["metadata"][RESOLVED_KEY] == "ReconciliationSucceeded"


async def test_on_change_memory_survives_a_notifier_restart(bus: Bus, bus_settings: BusSettings):
    on_change = {keys.NOTIFY_ANNOTATION: keys.NOTIFY_ON_CHANGE}
    async with running_sink() as sink:
        await apply(
            bus, provider("hook", sink.url()), alert("changes", "hook", annotations=on_change)
        )
        error = Severity.ERROR
        async with running_notifier(bus_settings):
            await bus.emit_event(event("app", "apply failed", severity=error, revision="1"))
            await until_received(sink, 1)
        async with running_notifier(bus_settings, instance="notifier-1"):
            await bus.emit_event(event("app", "apply failed", severity=error, revision="2"))
            await bus.emit_event(event("app", "fixed", revision="3"))
            await until_received(sink, 2)
        assert sink.messages() == ["apply failed", "fixed"]


@pytest.mark.parametrize(
    ("alert_spec", "provider_spec"),
    [
        pytest.param({"suspend": True}, {}, id="suspended-alert"),
        pytest.param({}, {"suspend": True}, id="suspended-provider"),
    ],
)
async def test_suspended_alerts_and_providers_send_nothing(
    bus: Bus, bus_settings: BusSettings, alert_spec: dict, provider_spec: dict
):
    async with running_sink() as sink:
        await apply(
            bus,
            provider("hook", sink.url(), **provider_spec),
            alert("all", "hook", exclusionList=[MARKER], **alert_spec),
        )
        await with_marker(bus, sink.url("/markers"))
        async with running_notifier(bus_settings):
            await bus.emit_event(event("app", "applied"))
            await bus.emit_event(event("app", MARKER))
            await until_received(sink, 1, "/markers")
        assert sink.messages("/hook") == []
