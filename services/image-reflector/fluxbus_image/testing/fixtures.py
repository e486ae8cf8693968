"""Pytest fixtures serving a real `docker-registry` (anonymous, Basic, Bearer, TLS, mTLS).

Registered as a pytest plugin by `tests/conftest.py` (`fluxbus_image.testing.fixtures`);
see `fluxbus_image.testing` for the list. `test_ca` comes from `fluxbus_git.testing.fixtures`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fluxbus_git.testing.tls import TestCA
from fluxbus_image.testing.registry_server import RegistryServer, registry_binary


@pytest.fixture(scope="session")
def docker_registry_binary() -> str:
    """The `docker-registry` executable; skips the test when it is not installed."""
    binary = registry_binary()
    if binary is None:
        pytest.skip("docker-registry not installed (Debian package 'docker-registry')")
    return binary


@pytest.fixture
def registry_factory(
    docker_registry_binary: str, tmp_path: Path
) -> Iterator[Callable[..., RegistryServer]]:
    """`make(auth="none", tls=None, require_client_cert=False, ...)` → a started registry."""
    servers: list[RegistryServer] = []

    def make(**kwargs: Any) -> RegistryServer:
        server = RegistryServer(tmp_path / f"registry-{len(servers)}", **kwargs)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def registry(registry_factory: Callable[..., RegistryServer]) -> RegistryServer:
    """An anonymous registry over plain http (with a counting front)."""
    return registry_factory()


@pytest.fixture
def registry_basic(registry_factory: Callable[..., RegistryServer]) -> RegistryServer:
    """A registry requiring Basic auth (htpasswd)."""
    return registry_factory(auth="htpasswd")


@pytest.fixture
def registry_token(registry_factory: Callable[..., RegistryServer]) -> RegistryServer:
    """A registry requiring Bearer tokens from its `.token_server`."""
    return registry_factory(auth="token")


@pytest.fixture
def registry_tls(
    registry_factory: Callable[..., RegistryServer], test_ca: TestCA
) -> RegistryServer:
    """A registry serving https with a certificate from `test_ca`."""
    return registry_factory(tls=test_ca)


@pytest.fixture
def registry_mtls(
    registry_factory: Callable[..., RegistryServer], test_ca: TestCA
) -> RegistryServer:
    """A registry serving https that requires a client certificate signed by `test_ca`."""
    return registry_factory(tls=test_ca, require_client_cert=True)
