"""The Receiver webhook server over real HTTP against a real nats-server, with
the Receiver reconciler publishing the paths: every type accepting good and
refusing bad requests, the answers Flux gives (404/401/400/503/413), pings and
filtered events, the objects it selects and the annotation it writes."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import aiohttp
import pytest
import structlog
from receiver_helpers import (
    NAMESPACE,
    TOKEN,
    gitrepository,
    key_of,
    receiver,
    receivers,
    requested_at,
    secret,
)

from fluxbus_common.bus import Bus
from fluxbus_common.testing.plugin import wait_for


def signed(alg: str, body: bytes, token: str = TOKEN) -> str:
    return f"{alg}={hmac.new(token.encode(), body, getattr(hashlib, alg)).hexdigest()}"


PUSH = json.dumps({"ref": "refs/heads/main", "after": "abc"}).encode()
JSON = {"Content-Type": "application/json"}
CDEVENT = json.dumps(
    {
        "context": {
            "version": "0.4.1",
            "id": "1",
            "source": "/ci",
            "type": "dev.cdevents.change.merged.0.2.0",
            "timestamp": "2023-03-20T14:27:05Z",
        },
        "subject": {"id": "change-1", "content": {}},
    }
).encode()


async def post(
    url: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers or {}) as resp,
    ):
        return resp.status, await resp.text()


async def setup(bus: Bus, *docs: dict[str, Any], token: str = TOKEN) -> None:
    await bus.put_secret(NAMESPACE, "webhook-token", secret(token=token))
    for d in docs:
        await bus.apply_object(key_of(d["kind"], d["metadata"]["name"]), d)


TYPES = [
    pytest.param("generic", [], {}, b"", {}, b"", id="generic"),
    pytest.param(
        "generic-hmac",
        [],
        {"X-Signature": signed("sha512", PUSH)},
        PUSH,
        {"X-Signature": signed("sha512", PUSH, "wrong")},
        PUSH,
        id="generic-hmac",
    ),
    pytest.param(
        "github",
        ["push"],
        {**JSON, "X-GitHub-Event": "push", "X-Hub-Signature-256": signed("sha256", PUSH)},
        PUSH,
        {**JSON, "X-GitHub-Event": "push", "X-Hub-Signature-256": signed("sha256", b"{}")},
        PUSH,
        id="github",
    ),
    pytest.param(
        "gitlab",
        ["Push Hook"],
        {"X-Gitlab-Token": TOKEN, "X-Gitlab-Event": "Push Hook"},
        PUSH,
        {"X-Gitlab-Token": TOKEN[:-1], "X-Gitlab-Event": "Push Hook"},
        PUSH,
        id="gitlab",
    ),
    pytest.param(
        "bitbucket",
        ["repo:refs_changed"],
        {**JSON, "X-Event-Key": "repo:refs_changed", "X-Hub-Signature": signed("sha256", PUSH)},
        PUSH,
        {**JSON, "X-Event-Key": "repo:refs_changed"},
        PUSH,
        id="bitbucket",
    ),
    pytest.param(
        "harbor",
        [],
        {"Authorization": TOKEN},
        PUSH,
        {"Authorization": "Basic x"},
        PUSH,
        id="harbor",
    ),
    pytest.param(
        "dockerhub",
        [],
        JSON,
        b'{"push_data":{"tag":"v1"},"repository":{"repo_url":"https://hub.docker.com/r/a"}}',
        JSON,
        b"<html>",
        id="dockerhub",
    ),
    pytest.param(
        "quay",
        [],
        JSON,
        b'{"docker_url":"quay.io/a/b","updated_tags":["v1"]}',
        JSON,
        b'{"updated_tags":[1]}',
        id="quay",
    ),
    pytest.param(
        "nexus",
        [],
        {"X-Nexus-Webhook-Signature": signed("sha1", PUSH).split("=")[1]},
        PUSH,
        {"X-Nexus-Webhook-Signature": signed("sha1", b"x").split("=")[1]},
        PUSH,
        id="nexus",
    ),
    pytest.param(
        "acr",
        [],
        JSON,
        b'{"action":"push","target":{"repository":"a","tag":"v1"}}',
        JSON,
        b'{"target":"a"}',
        id="acr",
    ),
    pytest.param(
        "cdevents",
        ["dev.cdevents.change.merged"],
        {"Ce-Type": "dev.cdevents.change.merged"},
        CDEVENT,
        {"Ce-Type": "dev.cdevents.change.merged"},
        b'{"context":{}}',
        id="cdevents",
    ),
]


@pytest.mark.parametrize(
    ("type_", "events", "good_headers", "good_body", "bad_headers", "bad_body"), TYPES
)
async def test_each_type_requests_a_reconcile_only_for_an_authentic_request(
    bus: Bus,
    type_: str,
    events: list[str],
    good_headers: dict[str, str],
    good_body: bytes,
    bad_headers: dict[str, str],
    bad_body: bytes,
):
    await setup(bus, gitrepository("podinfo"), receiver("hook", type_, events=events))
    async with receivers(bus) as rx:
        url = rx.url + await rx.path_of(bus, "hook")
        if type_ != "generic":
            status, _ = await post(url, bad_body, bad_headers)
            assert status in (400, 401)
            assert await requested_at(bus, key_of("GitRepository", "podinfo")) is None
        status, text = await post(url, good_body, good_headers)
        assert status == 200, text
        assert await requested_at(bus, key_of("GitRepository", "podinfo")) is not None


ANSWERS = [
    pytest.param({"X-GitHub-Event": "push"}, PUSH, 401, id="unsigned-is-401"),
    pytest.param(
        {"X-GitHub-Event": "push", "X-Hub-Signature-256": signed("sha256", PUSH, "nope")},
        PUSH,
        401,
        id="wrong-signature-is-401",
    ),
    pytest.param(
        {
            "Content-Type": "text/plain",
            "X-GitHub-Event": "push",
            "X-Hub-Signature-256": signed("sha256", PUSH),
        },
        PUSH,
        400,
        id="unsupported-content-type-is-400",
    ),
    pytest.param(
        {**JSON, "X-GitHub-Event": "ping", "X-Hub-Signature-256": signed("sha256", PUSH)},
        PUSH,
        200,
        id="ping-is-answered",
    ),
    pytest.param(
        {**JSON, "X-GitHub-Event": "issues", "X-Hub-Signature-256": signed("sha256", PUSH)},
        PUSH,
        200,
        id="filtered-event-is-ignored",
    ),
]


@pytest.mark.parametrize(("headers", "body", "status"), ANSWERS)
async def test_github_requests_that_must_not_trigger_anything(
    bus: Bus, headers: dict[str, str], body: bytes, status: int
):
    await setup(bus, gitrepository("podinfo"), receiver("gh", "github", events=["push"]))
    async with receivers(bus) as rx:
        url = rx.url + await rx.path_of(bus, "gh")
        got, _ = await post(url, body, {**JSON, **headers})
        assert got == status
        assert await requested_at(bus, key_of("GitRepository", "podinfo")) is None


async def test_unknown_paths_are_404_and_a_suspended_receiver_is_503(bus: Bus):
    await setup(bus, gitrepository("podinfo"), receiver("hook"))
    async with receivers(bus) as rx:
        path = await rx.path_of(bus, "hook")
        assert (await post(rx.url + "/hook/" + "0" * 64))[0] == 404
        assert (await post(rx.url + "/elsewhere"))[0] == 404

        await bus.apply_object(key_of("Receiver", "hook"), receiver("hook", suspend=True))
        await wait_for(lambda: getattr(rx.server.index.lookup(path), "suspended", False))
        status, text = await post(rx.url + path)
        assert (status, text) == (503, "receiver is suspended")
        assert await requested_at(bus, key_of("GitRepository", "podinfo")) is None


async def test_a_body_over_the_limit_is_413(bus: Bus):
    await setup(bus, gitrepository("podinfo"), receiver("hook"))
    async with receivers(bus, max_body=1024) as rx:
        url = rx.url + await rx.path_of(bus, "hook")
        assert (await post(url, b"x" * 1025))[0] == 413
        assert (await post(url, b"x" * 1024))[0] == 200


async def test_a_rotated_token_moves_the_path_at_once(bus: Bus):
    await setup(bus, gitrepository("podinfo"), receiver("hook"))
    async with receivers(bus) as rx:
        old = await rx.path_of(bus, "hook")
        await bus.put_secret(NAMESPACE, "webhook-token", secret(token="a-new-token"))
        new = await wait_for(
            lambda: next(iter(rx.server.index.paths() - {old}), None),
            message="the new path",
        )
        assert (await post(rx.url + old))[0] == 404
        assert (await post(rx.url + new))[0] == 200


async def test_wildcards_annotate_every_object_with_the_labels_in_the_namespace(bus: Bus):
    repos = [
        gitrepository("web-1", {"team": "web"}),
        gitrepository("web-2", {"team": "web"}),
        gitrepository("api", {"team": "api"}),
    ]
    hook = receiver(
        "hook",
        resources=[{"kind": "GitRepository", "name": "*", "matchLabels": {"team": "web"}}],
    )
    await setup(bus, *repos, hook)
    async with receivers(bus) as rx:
        status, _ = await post(rx.url + await rx.path_of(bus, "hook"))
        assert status == 200
    stamps = {
        name: await requested_at(bus, key_of("GitRepository", name))
        for name in ("web-1", "web-2", "api")
    }
    assert stamps["api"] is None
    assert stamps["web-1"] is not None
    assert stamps["web-1"] == stamps["web-2"]  # one request, one value
    assert stamps["web-1"].endswith("Z") and len(stamps["web-1"].split(".")[1]) == 10


async def test_the_resource_filter_narrows_the_selection_with_the_request_body(bus: Bus):
    repos = [gitrepository("frontend", {"r": "1"}), gitrepository("backend", {"r": "1"})]
    hook = receiver(
        "hook",
        resources=[{"kind": "GitRepository", "name": "*", "matchLabels": {"r": "1"}}],
        resourceFilter="req.image.contains(res.metadata.name)",
    )
    await setup(bus, *repos, hook)
    async with receivers(bus) as rx:
        body = json.dumps({"image": "registry/frontend:1.2"}).encode()
        status, _ = await post(rx.url + await rx.path_of(bus, "hook"), body, JSON)
        assert status == 200
    assert await requested_at(bus, key_of("GitRepository", "frontend")) is not None
    assert await requested_at(bus, key_of("GitRepository", "backend")) is None


async def test_a_named_object_that_is_missing_is_a_500_and_an_event(bus: Bus):
    hook = receiver(
        "hook",
        resources=[
            {"kind": "GitRepository", "name": "podinfo"},
            {"kind": "GitRepository", "name": "missing"},
        ],
    )
    await setup(bus, gitrepository("podinfo"), hook)
    async with receivers(bus) as rx:
        status, text = await post(rx.url + await rx.path_of(bus, "hook"))
        assert status == 500
        assert "GitRepository/flux-system/missing" in text
        assert await requested_at(bus, key_of("GitRepository", "podinfo")) is not None

        async def failure_event() -> dict[str, Any] | None:
            for event in await bus.recent_events("fluxbus.events.receiver.flux-system.hook"):
                if event.reason == "Failed" and "missing" in event.message:
                    return event.model_dump(by_alias=True)
            return None

        event = await wait_for(failure_event, message="the failure event")
        assert event["involvedObject"]["kind"] == "Receiver"


async def test_the_token_and_the_path_never_reach_the_logs(bus: Bus):
    await setup(bus, gitrepository("podinfo"), receiver("gh", "github", events=["push"]))
    with structlog.testing.capture_logs() as logs:
        async with receivers(bus) as rx:
            path = await rx.path_of(bus, "gh")
            url = rx.url + path
            push = {**JSON, "X-GitHub-Event": "push"}
            assert (await post(url, PUSH, {**push, "X-Gitlab-Token": TOKEN}))[0] == 401
            signature = {"X-Hub-Signature-256": signed("sha256", PUSH)}
            assert (await post(url, PUSH, {**push, **signature}))[0] == 200
    logged = repr(logs)
    assert "receiver.request" in logged
    assert TOKEN not in logged
    assert path.removeprefix("/hook/") not in logged
