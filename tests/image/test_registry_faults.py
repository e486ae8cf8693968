"""The registry client facing broken registries: real aiohttp servers standing in for them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from fluxbus_git.testing import free_port
from fluxbus_image.logic.reference import ImageName, parse_image
from fluxbus_image.registry import (
    RegistryAuthError,
    RegistryClient,
    RegistryError,
    RegistryServerError,
    RegistryUnreachableError,
)
from fluxbus_image.registry import client as client_module

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def client() -> AsyncIterator[RegistryClient]:
    c = RegistryClient()
    yield c
    await c.close()


@pytest.fixture
async def stand_in() -> AsyncIterator[Callable[[dict[str, Handler]], Awaitable[ImageName]]]:
    """`serve({path: handler})` → the image `127.0.0.1:PORT/app` of a stand-in registry."""
    runners: list[web.AppRunner] = []

    async def serve(routes: dict[str, Handler]) -> ImageName:
        app = web.Application()
        for path, handler in routes.items():
            app.router.add_route("*", path, handler)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return parse_image(f"127.0.0.1:{port}/app")

    yield serve
    for runner in runners:
        await runner.cleanup()


async def ok(_: web.Request) -> web.Response:
    return web.json_response({})


def status(code: int) -> Handler:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(status=code)

    return handler


def tags_page(tags: list[str], link: str | None = None) -> Handler:
    async def handler(_: web.Request) -> web.Response:
        headers = {"Link": f'<{link}>; rel="next"'} if link else {}
        return web.json_response({"name": "app", "tags": tags}, headers=headers)

    return handler


@pytest.mark.parametrize(
    "routes",
    [
        pytest.param({"/v2/": status(503)}, id="ping"),
        pytest.param({"/v2/": ok, "/v2/app/tags/list": status(500)}, id="tags"),
    ],
)
async def test_server_errors_carry_the_status_and_the_registry(
    stand_in: Callable[[dict[str, Handler]], Awaitable[ImageName]],
    client: RegistryClient,
    routes: dict[str, Handler],
) -> None:
    image = await stand_in(routes)
    with pytest.raises(RegistryServerError) as caught:
        await client.list_tags(image)
    assert image.registry in caught.value.message
    assert "HTTP 5" in caught.value.message


async def test_a_link_back_to_a_followed_page_ends_the_listing(
    stand_in: Callable[[dict[str, Handler]], Awaitable[ImageName]], client: RegistryClient
) -> None:
    image = await stand_in(
        {
            "/v2/": ok,
            "/v2/app/tags/list": tags_page(["a", "b"], "/v2/app/page2"),
            "/v2/app/page2": tags_page(["b", "c"], "/v2/app/tags/list?n=1000"),
        }
    )
    listing = await client.list_tags(image)
    assert listing.tags == ["a", "b", "c"]


async def test_a_link_to_another_host_is_refused(
    stand_in: Callable[[dict[str, Handler]], Awaitable[ImageName]], client: RegistryClient
) -> None:
    image = await stand_in(
        {"/v2/": ok, "/v2/app/tags/list": tags_page(["a"], "http://evil.example/v2/x")}
    )
    with pytest.raises(RegistryServerError, match="Link to another host"):
        await client.list_tags(image)


async def test_a_registry_listing_too_many_tags_is_refused(
    stand_in: Callable[[dict[str, Handler]], Awaitable[ImageName]],
    client: RegistryClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client_module, "MAX_TAGS", 5)
    counter = iter(range(10**6))

    async def endless(_: web.Request) -> web.Response:
        n = next(counter)
        return web.json_response(
            {"tags": [f"t{n}-{i}" for i in range(3)]},
            headers={"Link": f'</v2/app/tags/list?page={n + 1}>; rel="next"'},
        )

    image = await stand_in({"/v2/": ok, "/v2/app/tags/list": endless})
    with pytest.raises(RegistryServerError, match="more than 5 tags"):
        await client.list_tags(image)


async def test_a_closed_port_is_unreachable(client: RegistryClient) -> None:
    image = parse_image(f"127.0.0.1:{free_port()}/app")
    with pytest.raises(RegistryUnreachableError) as caught:
        await client.list_tags(image)
    assert f"cannot connect to {image.registry}" in caught.value.message


async def test_a_silent_registry_times_out_naming_the_timeout(client: RegistryClient) -> None:
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(RegistryUnreachableError, match=r"within the timeout of 0\.3s"):
            await client.list_tags(parse_image(f"127.0.0.1:{port}/app"), timeout=0.3)
    finally:
        release.set()
        server.close()
        await server.wait_closed()


async def test_a_rejected_cached_token_is_renewed_once(
    stand_in: Callable[[dict[str, Handler]], Awaitable[ImageName]], client: RegistryClient
) -> None:
    issued: list[str] = []
    valid: set[str] = set()
    realm: list[str] = []

    async def token(_: web.Request) -> web.Response:
        value = f"tok-{len(issued)}"
        issued.append(value)
        valid.clear()
        valid.add(value)
        return web.json_response({"token": value, "expires_in": 300})

    def challenge() -> web.Response:
        header = f'Bearer realm="{realm[0]}",service="stand-in"'
        return web.Response(status=401, headers={"WWW-Authenticate": header})

    async def ping(request: web.Request) -> web.Response:
        return challenge()

    async def tags(request: web.Request) -> web.Response:
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in valid:
            return challenge()
        return web.json_response({"tags": ["1.0.0"]})

    image = await stand_in({"/v2/": ping, "/v2/app/tags/list": tags, "/token": token})
    realm.append(f"http://{image.registry}/token")
    assert (await client.list_tags(image)).tags == ["1.0.0"]
    valid.clear()  # the registry forgot the token
    assert (await client.list_tags(image)).tags == ["1.0.0"]
    assert issued == ["tok-0", "tok-1"]


@pytest.mark.parametrize(
    ("token_answer", "message"),
    [
        pytest.param({"nothing": True}, "sent no usable token", id="no-token"),
        pytest.param(None, "refused anonymous access", id="refused"),
    ],
)
async def test_token_server_failures_are_auth_errors(
    stand_in: Callable[[dict[str, Handler]], Awaitable[ImageName]],
    client: RegistryClient,
    token_answer: dict[str, object] | None,
    message: str,
) -> None:
    realm: list[str] = []

    async def ping(_: web.Request) -> web.Response:
        header = f'Bearer realm="{realm[0]}",service="s"'
        return web.Response(status=401, headers={"WWW-Authenticate": header})

    async def token(_: web.Request) -> web.Response:
        if token_answer is None:
            return web.Response(status=401)
        return web.Response(body=json.dumps(token_answer), content_type="application/json")

    image = await stand_in({"/v2/": ping, "/token": token})
    realm.append(f"http://{image.registry}/token")
    with pytest.raises(RegistryAuthError, match=message):
        await client.list_tags(image)


async def test_an_unsupported_challenge_is_an_auth_error(
    stand_in: Callable[[dict[str, Handler]], Awaitable[ImageName]], client: RegistryClient
) -> None:
    async def ping(_: web.Request) -> web.Response:
        return web.Response(status=401, headers={"WWW-Authenticate": 'Negotiate realm="x"'})

    image = await stand_in({"/v2/": ping})
    with pytest.raises(RegistryAuthError, match="unsupported authentication 'negotiate'"):
        await client.list_tags(image)
    assert issubclass(RegistryAuthError, RegistryError)
