"""The registry client against a real docker-registry: auth modes, paging, digests, TLS, proxies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from fluxbus_git.testing import HTTPProxy, TestCA
from fluxbus_git.testing.proxy import HTTPProxy as _Proxy
from fluxbus_image.logic.credentials import RegistryCredentials, RegistryTLS, credentials_for
from fluxbus_image.logic.exclusion import exclude_tags
from fluxbus_image.logic.reference import parse_image
from fluxbus_image.registry import (
    RegistryAuthError,
    RegistryClient,
    RegistryNotFoundError,
    RegistryTLSError,
)
from fluxbus_image.testing import RegistryServer

TAGS = ["1.0.0", "1.1.0", "2.0.0"]


@pytest.fixture
async def client() -> AsyncIterator[RegistryClient]:
    c = RegistryClient()
    yield c
    await c.close()


def _creds(server: RegistryServer) -> RegistryCredentials:
    return RegistryCredentials(server.username, server.password)


async def test_an_anonymous_registry_lists_every_tag(
    registry: RegistryServer, client: RegistryClient
) -> None:
    registry.push_tags("team/app", TAGS)
    listing = await client.list_tags(parse_image(registry.image("team/app")))
    assert sorted(listing.tags) == TAGS


async def test_basic_auth_registries_take_the_docker_config_credentials(
    registry_basic: RegistryServer, client: RegistryClient
) -> None:
    registry_basic.push_tags("app", TAGS)
    image = parse_image(registry_basic.image("app"))
    creds = credentials_for(image, registry_basic.docker_config())
    assert sorted((await client.list_tags(image, credentials=creds)).tags) == TAGS


@pytest.mark.parametrize(
    "auth", [pytest.param("htpasswd", id="basic"), pytest.param("token", id="bearer")]
)
async def test_a_wrong_password_is_an_auth_error_that_names_no_secret(
    registry_factory: Callable[..., RegistryServer], client: RegistryClient, auth: str
) -> None:
    server = registry_factory(auth=auth)
    server.push_tags("app", TAGS)
    with pytest.raises(RegistryAuthError) as caught:
        await client.list_tags(
            parse_image(server.image("app")),
            credentials=RegistryCredentials(server.username, "wrong-pa55word"),
        )
    message = caught.value.message
    assert server.host in message and "wrong-pa55word" not in message
    assert server.password not in message
    assert caught.value.reason == "AuthenticationFailed"


async def test_a_basic_auth_registry_without_credentials_asks_for_a_secret(
    registry_basic: RegistryServer, client: RegistryClient
) -> None:
    with pytest.raises(RegistryAuthError, match=r"requires credentials.*spec\.secretRef"):
        await client.list_tags(parse_image(registry_basic.image("app")))


async def test_bearer_tokens_are_cached_across_scans(
    registry_token: RegistryServer, client: RegistryClient
) -> None:
    registry_token.push_tags("app", TAGS)
    image = parse_image(registry_token.image("app"))
    first = await client.list_tags(image, credentials=_creds(registry_token))
    second = await client.list_tags(image, credentials=_creds(registry_token))
    assert sorted(first.tags) == sorted(second.tags) == TAGS
    assert registry_token.token_server is not None
    assert registry_token.token_server.tokens == 1
    assert second.requests == 1


async def test_bearer_tokens_are_not_shared_between_credentials(
    registry_token: RegistryServer, client: RegistryClient
) -> None:
    registry_token.push_tags("app", TAGS)
    image = parse_image(registry_token.image("app"))
    await client.list_tags(image, credentials=_creds(registry_token))
    with pytest.raises(RegistryAuthError, match="refused the credentials"):
        await client.list_tags(image, credentials=RegistryCredentials(registry_token.username, "x"))


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param("none", id="anonymous"),
        pytest.param("htpasswd", id="basic"),
        pytest.param("token", id="bearer"),
    ],
)
async def test_an_unchanged_rescan_costs_one_request(
    registry_factory: Callable[..., RegistryServer], client: RegistryClient, auth: str
) -> None:
    server = registry_factory(auth=auth)
    server.push_tags("app", TAGS)
    image = parse_image(server.image("app"))
    creds = None if auth == "none" else _creds(server)
    await client.list_tags(image, credentials=creds)
    server.reset_counters()
    again = await client.list_tags(image, credentials=creds)
    assert sorted(again.tags) == TAGS
    assert server.requests <= 3
    assert server.counts == {"tags": 1}


@pytest.mark.parametrize(
    ("page_size", "cap", "ignore_n", "pages"),
    [
        pytest.param(10, None, False, 3, id="n-smaller-than-the-tag-count"),
        pytest.param(1000, 7, False, 4, id="registry-caps-n"),
        pytest.param(10, None, True, 1, id="registry-ignores-n"),
        pytest.param(25, None, False, 1, id="exactly-one-page"),
    ],
)
async def test_tag_lists_are_followed_across_pages(
    registry: RegistryServer,
    client: RegistryClient,
    page_size: int,
    cap: int | None,
    ignore_n: bool,
    pages: int,
) -> None:
    tags = [f"v{i:03d}" for i in range(25)]
    registry.push_tags("paged", tags)
    assert registry.front is not None
    registry.front.max_page_size, registry.front.ignore_n = cap, ignore_n
    registry.reset_counters()
    listing = await client.list_tags(parse_image(registry.image("paged")), page_size=page_size)
    assert listing.tags == tags
    assert registry.counts["tags"] == pages


async def test_the_exclusion_list_drops_signature_tags_the_registry_lists(
    registry: RegistryServer, client: RegistryClient
) -> None:
    registry.push_tags("signed", ["1.0.0", "sha256-abc.sig", "1.0.1"])
    listing = await client.list_tags(parse_image(registry.image("signed")))
    assert sorted(exclude_tags(listing.tags, None)) == ["1.0.0", "1.0.1"]


async def test_manifest_digests_equal_the_pushed_digests(
    registry_token: RegistryServer, client: RegistryClient
) -> None:
    pushed = {tag: registry_token.push_tag("app", tag) for tag in ("a", "b")}
    image = parse_image(registry_token.image("app"))
    read = {
        tag: await client.manifest_digest(image, tag, credentials=_creds(registry_token))
        for tag in pushed
    }
    assert read == pushed
    assert pushed["a"] != pushed["b"]


async def test_a_missing_repository_or_tag_is_not_found(
    registry: RegistryServer, client: RegistryClient
) -> None:
    registry.push_tag("app", "1.0.0")
    with pytest.raises(RegistryNotFoundError, match="NAME_UNKNOWN"):
        await client.list_tags(parse_image(registry.image("nothing/here")))
    with pytest.raises(RegistryNotFoundError, match=r"tag '9\.9\.9'"):
        await client.manifest_digest(parse_image(registry.image("app")), "9.9.9")


async def test_https_registries_are_trusted_through_the_certificate_secret(
    registry_tls: RegistryServer, client: RegistryClient, test_ca: TestCA
) -> None:
    registry_tls.push_tags("app", TAGS)
    image = parse_image(registry_tls.image("app"))
    tls = RegistryTLS.from_secret({"ca.crt": test_ca.ca_pem})
    assert sorted((await client.list_tags(image, tls=tls)).tags) == TAGS
    with pytest.raises(RegistryTLSError, match="unable to get local issuer certificate"):
        await client.list_tags(image, tls=RegistryTLS(ca=test_ca.other_ca_pem))


async def test_mtls_registries_need_the_client_certificate(
    registry_mtls: RegistryServer, client: RegistryClient, test_ca: TestCA
) -> None:
    digest = registry_mtls.push_tag("app", "1.0.0")
    image = parse_image(registry_mtls.image("app"))
    tls = RegistryTLS(ca=test_ca.ca_pem, cert=test_ca.client_cert_pem, key=test_ca.client_key_pem)
    assert (await client.list_tags(image, tls=tls)).tags == ["1.0.0"]
    assert await client.manifest_digest(image, "1.0.0", tls=tls) == digest
    with pytest.raises(RegistryTLSError, match=r"bad certificate|certificate required") as caught:
        await client.list_tags(image, tls=RegistryTLS(ca=test_ca.ca_pem))
    assert registry_mtls.host in caught.value.message


async def test_plain_http_needs_insecure_outside_the_localhost_heuristic(
    registry_factory: Callable[..., RegistryServer], client: RegistryClient
) -> None:
    server = registry_factory(front_host="127.0.0.2")
    server.push_tags("app", TAGS)
    image = parse_image(server.image("app"))
    assert not image.plain_http_fallback
    with pytest.raises(RegistryTLSError, match=r"127\.0\.0\.2"):
        await client.list_tags(image)
    assert sorted((await client.list_tags(image, insecure=True)).tags) == TAGS


async def test_scans_go_through_the_proxy_secret_proxy(
    registry: RegistryServer, client: RegistryClient, http_proxy: HTTPProxy
) -> None:
    registry.push_tags("app", TAGS)
    assert isinstance(http_proxy, _Proxy) and http_proxy.auth is not None
    from fluxbus_image.logic.credentials import proxy_from_secret

    proxy = proxy_from_secret(
        {
            "address": http_proxy.address,
            "username": http_proxy.auth.username,
            "password": http_proxy.auth.password,
        }
    )
    listing = await client.list_tags(parse_image(registry.image("app")), proxy=proxy)
    assert sorted(listing.tags) == TAGS
    assert http_proxy.requests >= 2


async def test_tags_linked_straight_into_storage_are_served_like_pushed_ones(
    registry: RegistryServer, client: RegistryClient
) -> None:
    tags = [f"1.0.{i}" for i in range(50)]
    digest = registry.push_tags("bench", tags, via_storage=True)
    image = parse_image(registry.image("bench"))
    assert sorted((await client.list_tags(image, page_size=20)).tags) == sorted(tags)
    assert await client.manifest_digest(image, "1.0.49") == digest
