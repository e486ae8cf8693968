"""A delivery that keeps failing: the notifier gives up after its retries,
raises a warning event on the Alert and marks the Provider Ready=False until a
later delivery succeeds; tokens and webhook URLs never show in logs, events or
status. And the service's entry point starts and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import pytest
from delivery_helpers import (
    alert,
    apply,
    event,
    provider,
    ready_condition,
    running_notifier,
    secret,
    until_received,
)
from notify_sink import running_sink

from fluxbus_common import subjects
from fluxbus_common.bus import Bus
from fluxbus_common.conditions import Reason
from fluxbus_common.settings import BusSettings
from fluxbus_common.testing.plugin import wait_for
from fluxbus_notifier.settings import NotifierSettings

GIVE_UP_FAST = NotifierSettings(retry_base=0.05, retry_cap=0.1, delivery_timeout=0.5)
TOKEN = "s3cr3t-T0KEN-in-the-url"


async def dispatch_failures(bus: Bus) -> list[str]:
    """Messages of the warning events raised on the Alert `all`."""
    found = await bus.recent_events(subjects.event_subject("Alert", "default", "all"))
    return [e.message for e in found if e.reason == Reason.NOTIFICATION_DISPATCH_FAILED]


async def test_a_failing_provider_is_not_ready_and_its_alert_warns_until_delivery_recovers(
    bus: Bus, bus_settings: BusSettings
):
    async with running_sink() as sink:
        await apply(bus, provider("hook", sink.url()), alert("all", "hook"))
        async with running_notifier(bus_settings, GIVE_UP_FAST):
            await wait_for(
                lambda: _is_ready(bus, "Provider", "hook", "True"), message="Provider ready"
            )
            await wait_for(lambda: _is_ready(bus, "Alert", "all", "True"), message="Alert ready")
            sink.fail_always = True
            await bus.emit_event(event("app", "lost cause"))
            await wait_for(lambda: dispatch_failures(bus), message="warning event on the Alert")
            [warning] = await dispatch_failures(bus)
            assert "Kustomization/default/app" in warning
            assert "503" in warning
            await wait_for(
                lambda: _is_ready(bus, "Provider", "hook", "False"), message="Provider not ready"
            )
            cond = await ready_condition(bus, "Provider", "hook")
            assert cond is not None and cond["reason"] == Reason.NOTIFICATION_DISPATCH_FAILED
            assert sink.refused > 1  # retried before giving up

            sink.fail_always = False
            await bus.emit_event(event("app", "back to normal"))
            await until_received(sink, 1)
            await wait_for(
                lambda: _is_ready(bus, "Provider", "hook", "True"), message="Provider ready again"
            )
        assert sink.messages() == ["back to normal"]


async def _is_ready(bus: Bus, kind: str, name: str, status: str) -> bool:
    cond = await ready_condition(bus, kind, name)
    return cond is not None and cond["status"] == status


async def test_an_alert_whose_provider_does_not_exist_is_not_ready(
    bus: Bus, bus_settings: BusSettings
):
    await apply(bus, alert("orphan", "missing"))
    async with running_notifier(bus_settings):
        await wait_for(lambda: _is_ready(bus, "Alert", "orphan", "False"), message="not ready")
        cond = await ready_condition(bus, "Alert", "orphan")
        assert cond is not None and cond["reason"] == Reason.PROVIDER_NOT_FOUND


async def test_tokens_and_webhook_urls_never_reach_logs_events_or_status(
    bus: Bus, bus_settings: BusSettings, capsys: pytest.CaptureFixture[str]
):
    async with running_sink() as sink:
        address = sink.url(f"/hook/{TOKEN}")
        await apply(
            bus,
            secret("hook-secret", address=address, token=TOKEN),
            provider("hook", secretRef={"name": "hook-secret"}),
            alert("all", "hook"),
        )
        sink.fail_always = True
        async with running_notifier(bus_settings, GIVE_UP_FAST):
            await bus.emit_event(event("app", "will fail"))
            await wait_for(lambda: dispatch_failures(bus), message="warning event")
            await wait_for(
                lambda: _is_ready(bus, "Provider", "hook", "False"), message="Provider not ready"
            )
            sink.fail_always = False
            await bus.emit_event(event("app", "will pass"))
            await until_received(sink, 1)
        captured = capsys.readouterr()
        statuses = [
            await bus.get_status(subjects.object_key(k, "default", n))
            for k, n in (("Provider", "hook"), ("Alert", "all"))
        ]
        events = [e.model_dump_json() for e in await bus.recent_events()]
        for text in (captured.out, captured.err, json.dumps([s.value for s in statuses if s])):
            assert TOKEN not in text
        assert not [e for e in events if TOKEN in e or address in e]
        assert sink.received[0].path == f"/hook/{TOKEN}"  # the Secret's address was used


async def test_the_entry_point_runs_the_service_and_stops_on_sigterm(bus_settings: BusSettings):
    env = {
        **os.environ,
        "FLUXBUS_NATS_URL": bus_settings.url,
        "FLUXBUS_HTTP_ADDR": "127.0.0.1:0",
        "FLUXBUS_RECEIVER_ADDR": "127.0.0.1:0",
        "FLUXBUS_INSTANCE": "entry-point",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluxbus_notifier",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(20):
            while b"service.started" not in (line := await proc.stdout.readline()):
                assert line, "the notifier exited before it started"
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            rest = await proc.stdout.read()
            assert await proc.wait() == 0
        assert b"service.stopped" in rest
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_an_alert_with_an_invalid_pattern_is_stalled(bus: Bus, bus_settings: BusSettings):
    await apply(
        bus, provider("hook", "http://127.0.0.1:1/"), alert("bad", "hook", inclusionList=["("])
    )
    async with running_notifier(bus_settings):
        await wait_for(lambda: _is_ready(bus, "Alert", "bad", "False"), message="not ready")
        cond = await ready_condition(bus, "Alert", "bad")
        assert cond is not None and cond["reason"] == Reason.INVALID_CONFIG


async def test_a_provider_waits_for_its_secret_and_is_ready_once_it_exists(
    bus: Bus, bus_settings: BusSettings
):
    await apply(bus, provider("hook", secretRef={"name": "later"}))
    async with running_notifier(bus_settings):
        await wait_for(lambda: _is_ready(bus, "Provider", "hook", "False"), message="not ready")
        cond = await ready_condition(bus, "Provider", "hook")
        assert cond is not None and cond["reason"] == Reason.SECRET_NOT_FOUND
        await apply(bus, secret("later", address="http://127.0.0.1:1/hook"))
        await wait_for(
            lambda: _is_ready(bus, "Provider", "hook", "True"),
            message="ready once the Secret exists",
        )
