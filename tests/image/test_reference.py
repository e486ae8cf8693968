"""Image names read as Flux reads `spec.image` (go-containerregistry's ParseReference)."""

from __future__ import annotations

import pytest

from fluxbus_image.logic.reference import ImageName, InvalidImageError, parse_image


@pytest.mark.parametrize(
    ("image", "registry", "repository"),
    [
        pytest.param("alpine", "index.docker.io", "library/alpine", id="docker-hub-official"),
        pytest.param("docker.io/alpine", "index.docker.io", "library/alpine", id="docker-io-alias"),
        pytest.param(
            "docker.io/library/alpine", "index.docker.io", "library/alpine", id="docker-io-library"
        ),
        pytest.param(
            "index.docker.io/fluxcd/flux", "index.docker.io", "fluxcd/flux", id="index-host"
        ),
        pytest.param(
            "stefanprodan/podinfo", "index.docker.io", "stefanprodan/podinfo", id="hub-user"
        ),
        pytest.param("ghcr.io/org/app", "ghcr.io", "org/app", id="ghcr"),
        pytest.param("ghcr.io/org/team/app", "ghcr.io", "org/team/app", id="nested-path"),
        pytest.param("localhost:5000/app", "localhost:5000", "app", id="localhost-port"),
        pytest.param("127.0.0.1:5000/a/b", "127.0.0.1:5000", "a/b", id="loopback-ip"),
        pytest.param(
            "localhost/app", "index.docker.io", "localhost/app", id="bare-localhost-is-hub"
        ),
        pytest.param("[::1]:5000/app", "[::1]:5000", "app", id="ipv6-loopback"),
        pytest.param("registry.example.com/a_b-c.d", "registry.example.com", "a_b-c.d", id="chars"),
    ],
)
def test_image_names_resolve_to_flux_canonical_names(
    image: str, registry: str, repository: str
) -> None:
    assert parse_image(image) == ImageName(registry, repository, f"{registry}/{repository}")


@pytest.mark.parametrize(
    ("image", "message"),
    [
        pytest.param("alpine:3.19", "should not include a tag; remove ':3.19'", id="tag"),
        pytest.param(
            "localhost:5000/app:v1", "should not include a tag; remove ':v1'", id="tag-after-port"
        ),
        pytest.param(
            "ghcr.io/org/app@sha256:" + "a" * 64, "should not include a digest", id="digest"
        ),
        pytest.param("ghcr.io/org/app@latest", "a digest must look like", id="bad-digest"),
        pytest.param(
            "https://ghcr.io/org/app",
            "should not include URL scheme; remove 'https://'",
            id="scheme",
        ),
        pytest.param("ghcr.io/Org/App", "repository can only contain", id="uppercase"),
        pytest.param("a", "must be 2 to 255 long", id="too-short"),
        pytest.param("", "a repository name must be specified", id="empty"),
        pytest.param("bad_host.io:x/app", "RFC 3986", id="bad-registry"),
    ],
)
def test_invalid_images_are_refused_naming_the_image(image: str, message: str) -> None:
    with pytest.raises(InvalidImageError) as caught:
        parse_image(image)
    assert message in caught.value.message
    assert f"'{image}'" in caught.value.message
    assert caught.value.reason == "ImageURLInvalid"


@pytest.mark.parametrize(
    ("image", "fallback"),
    [
        pytest.param("localhost:5000/app", True, id="localhost-port"),
        pytest.param("127.0.0.1:5000/app", True, id="loopback"),
        pytest.param("registry.localhost/app", True, id="dot-localhost"),
        pytest.param("192.168.1.10:5000/app", True, id="rfc1918"),
        pytest.param("10.0.0.1/app", True, id="rfc1918-no-port"),
        pytest.param("8.8.8.8:5000/app", False, id="public-ip"),
        pytest.param("ghcr.io/org/app", False, id="public-host"),
        pytest.param("alpine", False, id="docker-hub"),
    ],
)
def test_plain_http_fallback_follows_go_containerregistry_localhost_heuristic(
    image: str, fallback: bool
) -> None:
    assert parse_image(image).plain_http_fallback is fallback
