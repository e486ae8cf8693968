"""Delivery over real HTTP: retryable or not per outcome, TLS with a CA and mTLS, a
forward proxy, timeouts, and no address or token in errors or logs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import structlog
from notifier_helpers import make_event, make_provider

from fluxbus_git.testing.network import free_port
from fluxbus_git.testing.proxy import HTTPProxy
from fluxbus_git.testing.tls import TestCA
from fluxbus_notifier.logic.provider_config import provider_config
from fluxbus_notifier.providers import DeliveryError, send
from fluxbus_notifier.testing.endpoints import Endpoint, Reply, server_ssl_context

TOKEN = "xoxb-very-secret-token"


async def deliver(
    session: aiohttp.ClientSession,
    address: str,
    *,
    type_: str = "generic",
    secret: dict[str, bytes] | None = None,
    cert_secret: dict[str, bytes] | None = None,
    proxy_secret: dict[str, bytes] | None = None,
    **spec: Any,
) -> None:
    provider = make_provider(type_, address, **spec)
    config = provider_config(provider, secret, cert_secret, proxy_secret=proxy_secret)
    await send(session, config, make_event(), event_id="evt-1")


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        pytest.param(500, True, id="500"),
        pytest.param(502, True, id="502"),
        pytest.param(503, True, id="503"),
        pytest.param(429, True, id="429"),
        pytest.param(400, False, id="400"),
        pytest.param(401, False, id="401"),
        pytest.param(403, False, id="403"),
        pytest.param(404, False, id="404"),
        pytest.param(301, False, id="redirect-not-followed"),
    ],
)
async def test_status_codes_decide_whether_to_retry(
    endpoint: Endpoint, session: aiohttp.ClientSession, status: int, retryable: bool
) -> None:
    endpoint.reply(Reply(status=status, body=b"nope"))
    with pytest.raises(DeliveryError) as raised:
        await deliver(session, endpoint.url_for("/hook"))
    assert (raised.value.status, raised.value.retryable) == (status, retryable)
    assert f"request failed with status code {status}: nope" in str(raised.value)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_any_2xx_is_accepted(
    endpoint: Endpoint, session: aiohttp.ClientSession, status: int
) -> None:
    endpoint.reply(Reply(status=status, body=b""))
    await deliver(session, endpoint.url_for("/hook"))
    assert len(endpoint.requests) == 1


async def test_retry_after_is_passed_on(endpoint: Endpoint, session: aiohttp.ClientSession) -> None:
    endpoint.reply(Reply(status=429, headers={"Retry-After": "7"}))
    with pytest.raises(DeliveryError) as raised:
        await deliver(session, endpoint.url_for("/hook"))
    assert raised.value.retry_after == 7.0


async def test_a_refused_connection_is_retryable(session: aiohttp.ClientSession) -> None:
    with pytest.raises(DeliveryError) as raised:
        await deliver(session, f"http://127.0.0.1:{free_port()}/hook")
    assert raised.value.retryable and raised.value.status is None


async def test_a_stalled_endpoint_times_out_retryably(
    endpoint: Endpoint, session: aiohttp.ClientSession
) -> None:
    endpoint.reply(Reply(stall=True))
    with pytest.raises(DeliveryError) as raised:
        await deliver(session, endpoint.url_for("/hook"), timeout="200ms")
    assert raised.value.retryable
    assert "timed out after 0.2s" in str(raised.value)


async def test_unsupported_types_are_refused_for_good(session: aiohttp.ClientSession) -> None:
    with pytest.raises(DeliveryError) as raised:
        await deliver(session, "https://hooks.example", type_="telegram")
    assert not raised.value.retryable
    assert "provider type 'telegram' is not supported" in str(raised.value)


@pytest.fixture
async def tls_endpoint(test_ca: TestCA) -> AsyncIterator[Endpoint]:
    ctx = server_ssl_context(test_ca.path("server.crt"), test_ca.path("server.key"))
    async with Endpoint(ssl_context=ctx) as ep:
        yield ep


@pytest.fixture
async def mtls_endpoint(test_ca: TestCA) -> AsyncIterator[Endpoint]:
    ctx = server_ssl_context(
        test_ca.path("server.crt"), test_ca.path("server.key"), test_ca.path("ca.crt")
    )
    async with Endpoint(ssl_context=ctx) as ep:
        yield ep


async def test_https_with_the_ca_from_cert_secret_ref(
    tls_endpoint: Endpoint, session: aiohttp.ClientSession, test_ca: TestCA
) -> None:
    await deliver(session, tls_endpoint.url_for("/hook"), cert_secret={"ca.crt": test_ca.ca_pem})
    assert len(tls_endpoint.requests) == 1


@pytest.mark.parametrize(
    "cert_secret",
    [pytest.param(None, id="system-roots"), pytest.param("other", id="another-ca")],
)
async def test_https_with_an_untrusted_certificate_is_not_retryable(
    tls_endpoint: Endpoint,
    session: aiohttp.ClientSession,
    test_ca: TestCA,
    cert_secret: str | None,
) -> None:
    secret = {"ca.crt": test_ca.other_ca_pem} if cert_secret else None
    with pytest.raises(DeliveryError) as raised:
        await deliver(session, tls_endpoint.url_for("/hook"), cert_secret=secret)
    assert not raised.value.retryable
    assert "TLS certificate rejected" in str(raised.value)
    assert tls_endpoint.requests == []


async def test_mtls_presents_the_client_certificate(
    mtls_endpoint: Endpoint, session: aiohttp.ClientSession, test_ca: TestCA
) -> None:
    cert_secret = {
        "ca.crt": test_ca.ca_pem,
        "tls.crt": test_ca.client_cert_pem,
        "tls.key": test_ca.client_key_pem,
    }
    await deliver(session, mtls_endpoint.url_for("/hook"), cert_secret=cert_secret)
    assert len(mtls_endpoint.requests) == 1

    with pytest.raises(DeliveryError):
        await deliver(
            session, mtls_endpoint.url_for("/hook"), cert_secret={"ca.crt": test_ca.ca_pem}
        )
    assert len(mtls_endpoint.requests) == 1


async def test_a_bad_ca_is_a_configuration_error(
    endpoint: Endpoint, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(DeliveryError) as raised:
        await deliver(session, endpoint.url_for("/hook"), cert_secret={"ca.crt": b"not pem"})
    assert not raised.value.retryable
    assert "certSecretRef: ca.crt is not a PEM certificate" in str(raised.value)


async def test_proxy_from_the_proxy_secret(
    endpoint: Endpoint, session: aiohttp.ClientSession, http_proxy: HTTPProxy
) -> None:
    assert http_proxy.auth is not None
    proxy_secret = {
        "address": http_proxy.address.encode(),
        "username": http_proxy.auth.username.encode(),
        "password": http_proxy.auth.password.encode(),
    }
    await deliver(session, endpoint.url_for("/hook"), proxy_secret=proxy_secret)
    assert http_proxy.requests == 1
    (req,) = endpoint.requests
    assert req.headers["Gotk-Component"] == "kustomize-controller"
    assert "Proxy-Authorization" not in req.headers


async def test_proxy_with_credentials_in_the_secret_url_tunnels_https(
    tls_endpoint: Endpoint, session: aiohttp.ClientSession, http_proxy: HTTPProxy, test_ca: TestCA
) -> None:
    assert http_proxy.auth is not None
    auth = f"{http_proxy.auth.username}:{http_proxy.auth.password}"
    proxy = http_proxy.address.replace("http://", f"http://{auth}@")
    await deliver(
        session,
        tls_endpoint.url_for("/hook"),
        secret={"proxy": proxy.encode()},
        cert_secret={"ca.crt": test_ca.ca_pem},
    )
    assert http_proxy.tunnels == 1
    assert len(tls_endpoint.requests) == 1


async def test_a_proxy_refusing_credentials_fails_without_leaking_them(
    endpoint: Endpoint, session: aiohttp.ClientSession, http_proxy: HTTPProxy
) -> None:
    proxy = http_proxy.address.replace("http://", "http://proxy-user:wrong-pa55w0rd@")
    with pytest.raises(DeliveryError) as raised:
        await deliver(session, endpoint.url_for("/hook"), secret={"proxy": proxy.encode()})
    assert raised.value.status == 407 and not raised.value.retryable
    assert "wrong-pa55w0rd" not in str(raised.value)
    assert endpoint.requests == []


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(
            Reply(status=500, body=f"echo https://127.0.0.1 {TOKEN}".encode()), id="server-error"
        ),
        pytest.param(Reply(stall=True), id="timeout"),
        pytest.param(None, id="refused"),
        pytest.param(Reply(status=200), id="success"),
    ],
)
async def test_no_token_or_address_in_errors_or_logs(
    endpoint: Endpoint, session: aiohttp.ClientSession, reply: Reply | None
) -> None:
    address = (
        endpoint.url_for("/services/T0/B0/webhook-secret-path")
        if reply is not None
        else f"http://127.0.0.1:{free_port()}/services/T0/B0/webhook-secret-path"
    )
    if reply is not None:
        endpoint.reply(
            Reply(
                status=reply.status,
                body=reply.body.replace(b"https://127.0.0.1", address.encode()),
                stall=reply.stall,
            )
        )
    secret = {"address": address.encode(), "token": TOKEN.encode()}
    with structlog.testing.capture_logs() as logs:
        try:
            await deliver(session, "", type_="slack", secret=secret, timeout="200ms")
        except DeliveryError as e:
            error_text = f"{e} {e!r} {e.args}"
        else:
            error_text = ""
    for text in (error_text, repr(logs)):
        assert address not in text
        assert "webhook-secret-path" not in text
        assert TOKEN not in text
    if reply is None or reply.status != 200:
        assert error_text, "the delivery failed"
