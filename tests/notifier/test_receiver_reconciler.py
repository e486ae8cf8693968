"""The Receiver reconciler through the real runtime and nats-server: the
webhook path and Ready message as Flux writes them, TokenNotFound without a
token, Stalled on a spec that cannot work, and Flux's success event."""

from __future__ import annotations

from typing import Any

import pytest
from receiver_helpers import NAMESPACE, TOKEN, key_of, ready_of, receiver, receivers, secret, status

from fluxbus_common.bus import Bus
from fluxbus_common.testing.plugin import wait_for
from fluxbus_notifier.logic.webhooks import webhook_path
from fluxbus_notifier.receivers.settings import ReceiverSettings


async def reconciled(bus: Bus, name: str, ready: str, reason: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        st = await status(bus, name)
        cond = ready_of(st)
        return st if cond and cond["status"] == ready and cond["reason"] == reason else None

    return dict(await wait_for(done, message=f"{name} Ready={ready} {reason}"))


async def test_a_receiver_publishes_its_path_and_says_so_in_ready(bus: Bus):
    await bus.put_secret(NAMESPACE, "webhook-token", secret(token=TOKEN))
    await bus.apply_object(key_of("Receiver", "hook"), receiver("hook", "github"))
    async with receivers(bus):
        st = await reconciled(bus, "hook", "True", "Succeeded")
    path = webhook_path(TOKEN, "hook", NAMESPACE)
    assert st["webhookPath"] == path
    assert ready_of(st)["message"] == f"Receiver initialized for path: {path}"
    assert st["observedGeneration"] == 1
    events = await bus.recent_events("fluxbus.events.receiver.flux-system.hook")
    assert any(e.message == "Reconciliation finished, next run in 10m0s" for e in events)
    assert all(TOKEN not in e.message for e in events)


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        pytest.param(
            None,
            "unable to read token from secret 'flux-system/webhook-token' error: "
            'secrets "webhook-token" not found',
            id="no-secret",
        ),
        pytest.param(
            secret(other="x"),
            "invalid 'flux-system/webhook-token' secret data: required fields 'token'",
            id="no-token-key",
        ),
        pytest.param(
            secret(token=" "),
            "invalid 'flux-system/webhook-token' secret data: 'token' is empty",
            id="empty-token",
        ),
    ],
)
async def test_without_a_token_the_receiver_is_not_ready_and_has_no_path(
    bus: Bus, stored: dict[str, Any] | None, message: str
):
    if stored is not None:
        await bus.put_secret(NAMESPACE, "webhook-token", stored)
    await bus.apply_object(key_of("Receiver", "hook"), receiver("hook"))
    async with receivers(bus):
        st = await reconciled(bus, "hook", "False", "TokenNotFound")
        assert ready_of(st)["message"] == message
        assert "webhookPath" not in st
        # the Secret arriving later is noticed at once, not at the next interval
        await bus.put_secret(NAMESPACE, "webhook-token", secret(token=TOKEN))
        st = await reconciled(bus, "hook", "True", "Succeeded")
        assert st["webhookPath"] == webhook_path(TOKEN, "hook", NAMESPACE)


@pytest.mark.parametrize(
    ("spec", "reason", "fragment"),
    [
        pytest.param(
            {"resourceFilter": "res.metadata.name =="},
            "InvalidCELExpression",
            "invalid resourceFilter expression",
            id="invalid-resource-filter",
        ),
        pytest.param({"type": "gcr"}, "ValidationFailed", "'gcr' is not supported", id="gcr"),
    ],
)
async def test_a_spec_that_cannot_work_stalls(
    bus: Bus, spec: dict[str, Any], reason: str, fragment: str
):
    await bus.put_secret(NAMESPACE, "webhook-token", secret(token=TOKEN))
    doc = receiver("hook")
    doc["spec"].update(spec)
    await bus.apply_object(key_of("Receiver", "hook"), doc)
    async with receivers(bus):
        st = await reconciled(bus, "hook", "False", reason)
    message = ready_of(st)["message"]
    assert message.startswith("Reconciliation failed terminally due to configuration error: ")
    assert fragment in message
    assert any(c["type"] == "Stalled" and c["status"] == "True" for c in st["conditions"])


@pytest.mark.parametrize(
    ("env", "addr"),
    [
        pytest.param({}, "0.0.0.0:9292", id="flux-port-by-default"),
        pytest.param({"FLUXBUS_RECEIVER_ADDR": "127.0.0.1:0"}, "127.0.0.1:0", id="from-env"),
    ],
)
def test_the_server_address_comes_from_fluxbus_receiver_addr(env: dict[str, str], addr: str):
    assert ReceiverSettings.from_env(env).addr == addr


def test_a_malformed_address_is_refused():
    with pytest.raises(ValueError, match="FLUXBUS_RECEIVER_ADDR"):
        ReceiverSettings.from_env({"FLUXBUS_RECEIVER_ADDR": "localhost"})
