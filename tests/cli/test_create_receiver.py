"""`fluxbus create receiver` and `fluxbus get receivers|alerts|providers`: the
Receiver and its token Secret stored, the webhook URL printed (the path the
notifier then publishes), a generated token shown once, bad input refused, and
Flux's columns with the webhook path in the Receiver's message."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator

import pytest
import yaml
from cli_helpers import Cli

from fluxbus_common.api.notification import webhook_path
from fluxbus_common.bus import Bus
from fluxbus_common.runtime import EventRecorder
from fluxbus_common.settings import RuntimeSettings
from fluxbus_common.testing.plugin import running_runtime
from fluxbus_notifier.receivers.reconciler import ReceiverReconciler

NS = "flux-system"
SETTINGS = RuntimeSettings(workers=1, shards=1, lease_ttl=5, instance="test", http_addr="")


@contextlib.asynccontextmanager
async def notifier(bus: Bus) -> AsyncIterator[None]:
    """The Receiver reconciler, as the notifier service runs it."""
    recorder = EventRecorder(bus, "notification-controller", "test")
    async with running_runtime(
        bus, ReceiverReconciler(bus, recorder), SETTINGS, service="notifier"
    ):
        yield


async def stored_token(bus: Bus, name: str) -> str:
    doc = await bus.get_secret(NS, name)
    assert doc is not None
    return base64.b64decode(doc["data"]["token"]).decode()


async def test_create_receiver_stores_it_with_its_token_and_prints_the_url(cli: Cli, bus: Bus):
    async with notifier(bus):
        ran = await cli(
            "create", "receiver", "github-receiver",
            "--type", "github",
            "--event", "ping,push",
            "--resource", "GitRepository/podinfo",
            "--resource", "ks/apps",
            "--secret-ref", "receiver-token",
            "--token", "t0ken",
            "--url-base", "https://flux-webhook.example.com/",
        )  # fmt: skip
        assert ran.code == 0, ran.output
    path = webhook_path("t0ken", "github-receiver", NS)
    assert f"webhook URL: https://flux-webhook.example.com{path}" in ran.stdout
    assert "secret/flux-system/receiver-token created" in ran.stdout
    assert "receiver/flux-system/github-receiver created" in ran.stdout
    assert "Receiver github-receiver is ready" in ran.stderr
    assert "t0ken" not in ran.output
    assert await stored_token(bus, "receiver-token") == "t0ken"
    entry = await bus.get_object("receiver.flux-system.github-receiver")
    assert entry is not None
    assert entry.value["spec"] == {
        "type": "github",
        "events": ["ping", "push"],
        "resources": [
            {"kind": "GitRepository", "name": "podinfo"},
            {"kind": "Kustomization", "name": "apps"},
        ],
        "secretRef": {"name": "receiver-token"},
    }
    table = await cli("get", "receivers")
    assert table.stdout.splitlines()[0].split() == ["NAME", "SUSPENDED", "READY", "MESSAGE", "AGE"]
    assert f"Receiver initialized for path: {path}" in table.stdout


async def test_without_a_token_one_is_generated_and_shown_once(cli: Cli, bus: Bus):
    args = ("create", "receiver", "hook", "--type", "generic", "--resource", "GitRepository/a",
            "--secret-ref", "hook-token", "--no-wait")  # fmt: skip
    ran = await cli(*args)
    assert ran.code == 0, ran.output
    token = await stored_token(bus, "hook-token")
    assert len(token) == 40
    assert f"token: {token}" in ran.stdout
    assert f"webhook URL: http://localhost:9292{webhook_path(token, 'hook', NS)}" in ran.stdout

    again = await cli(*args)  # the Secret exists: its token is kept, not shown
    assert again.code == 0, again.output
    assert token not in again.stdout
    assert await stored_token(bus, "hook-token") == token
    assert webhook_path(token, "hook", NS) in again.stdout


async def test_export_prints_the_receiver_and_never_a_token(cli: Cli, bus: Bus):
    ran = await cli(
        "create", "receiver", "hook", "--type", "gitlab", "--event", "Push Hook",
        "--resource", "GitRepository/a", "--secret-ref", "t", "--token", "sekret", "--export",
    )  # fmt: skip
    assert ran.code == 0, ran.output
    assert "sekret" not in ran.output
    doc = yaml.safe_load(ran.stdout)
    assert doc["kind"] == "Receiver"
    assert doc["spec"]["events"] == ["Push Hook"]
    assert await bus.get_object("receiver.flux-system.hook") is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("--type", "svn"), "--type must be one of", id="unknown-type"),
        pytest.param(("--resource", "podinfo"), "must be in format <kind>/<name>", id="no-kind"),
        pytest.param(
            ("--resource", "Deployment/web"), "kind must be one of", id="not-a-toolkit-kind"
        ),
        pytest.param(
            ("--url-base", "flux.example.com"), "--url-base must start", id="bad-url-base"
        ),
    ],
)
async def test_bad_input_is_refused_with_a_reason(
    cli: Cli, bus: Bus, args: tuple[str, ...], message: str
):
    base = {"--type": "github", "--resource": "GitRepository/a", "--secret-ref": "t"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [x for pair in base.items() for x in pair]
    ran = await cli("create", "receiver", "hook", *flat, "--no-wait")
    assert ran.code == 1
    assert message in ran.stderr
    assert await bus.get_object("receiver.flux-system.hook") is None


async def test_providers_and_alerts_are_listed_with_fluxs_columns(cli: Cli, bus: Bus):
    provider = {
        "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
        "kind": "Provider",
        "metadata": {"name": "slack", "namespace": NS},
        "spec": {"type": "slack", "channel": "general"},
    }
    alert = {
        "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
        "kind": "Alert",
        "metadata": {"name": "on-call", "namespace": NS},
        "spec": {
            "providerRef": {"name": "slack"},
            "eventSources": [{"kind": "Kustomization", "name": "*"}],
            "suspend": True,
        },
    }
    ran = await cli("apply", "-f", "-", input=yaml.safe_dump_all([provider, alert]))
    assert ran.code == 0, ran.output
    providers = (await cli("get", "providers")).stdout.splitlines()
    assert providers[0].split() == ["NAME", "READY", "MESSAGE", "AGE"]
    assert providers[1].split()[:4] == ["slack", "True", "Provider", "is"]
    alerts = (await cli("get", "alerts")).stdout.splitlines()
    assert alerts[0].split() == ["NAME", "SUSPENDED", "READY", "MESSAGE", "AGE"]
    assert alerts[1].split()[:5] == ["on-call", "True", "True", "Alert", "is"]
