"""Pytest fixtures serving real Git repositories (smart HTTP, HTTPS, mTLS, SSH, a proxy).

Registered as a pytest plugin by `tests/conftest.py` (`fluxbus_git.testing.fixtures`),
so every package's tests (source, kustomize, image automation, the demo) can use them.
See `fluxbus_git.testing` for the fixture list.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fluxbus_git.testing.gpg import GPGKeys
from fluxbus_git.testing.http_server import BasicAuth, BearerAuth, GitHTTPServer
from fluxbus_git.testing.proxy import HTTPProxy
from fluxbus_git.testing.repos import GitRepo, make_repo
from fluxbus_git.testing.ssh_server import GitSSHServer, make_ssh_keys
from fluxbus_git.testing.tls import TestCA


@pytest.fixture
def git_root(tmp_path: Path) -> Path:
    """Directory holding the served bare repositories."""
    root = tmp_path / "git-served"
    root.mkdir()
    return root


@pytest.fixture
def git_repo_factory(git_root: Path) -> Iterator[Callable[[str], GitRepo]]:
    """`make(name)` → a new (or the existing) bare repo `<git_root>/<name>.git`."""
    made: dict[str, GitRepo] = {}

    def make(name: str = "repo") -> GitRepo:
        if name not in made:
            made[name] = make_repo(git_root, name)
        return made[name]

    yield make
    for repo in made.values():
        repo.close()


@pytest.fixture
def git_repo(git_repo_factory: Callable[[str], GitRepo]) -> GitRepo:
    """An empty bare repository named `repo`, served by every server fixture."""
    return git_repo_factory("repo")


@pytest.fixture
def test_ca(tmp_path: Path) -> TestCA:
    """A throw-away CA with server and client certificates."""
    return TestCA.create(tmp_path / "tls")


@pytest.fixture
def git_http_server_factory(git_root: Path) -> Iterator[Callable[..., GitHTTPServer]]:
    """`make(auth=None, tls=None, require_client_cert=False)` → a started `GitHTTPServer`."""
    servers: list[GitHTTPServer] = []

    def make(**kwargs: Any) -> GitHTTPServer:
        server = GitHTTPServer(git_root, **kwargs).start()
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def git_http_server(git_http_server_factory: Callable[..., GitHTTPServer]) -> GitHTTPServer:
    """Anonymous smart HTTP."""
    return git_http_server_factory()


@pytest.fixture
def git_http_basic_server(git_http_server_factory: Callable[..., GitHTTPServer]) -> GitHTTPServer:
    """Smart HTTP requiring basic auth (`.username`, `.password`)."""
    return git_http_server_factory(auth=BasicAuth("fluxbus", "s3cr3t-pa55"))


@pytest.fixture
def git_http_bearer_server(git_http_server_factory: Callable[..., GitHTTPServer]) -> GitHTTPServer:
    """Smart HTTP requiring `Authorization: Bearer <.token>`."""
    return git_http_server_factory(
        auth=BearerAuth("t0ken-" + base64.b32encode(os.urandom(10)).decode())
    )


@pytest.fixture
def git_https_server(
    git_http_server_factory: Callable[..., GitHTTPServer], test_ca: TestCA
) -> GitHTTPServer:
    """HTTPS with a certificate from `test_ca` (`.ca.ca_pem` to trust)."""
    return git_http_server_factory(tls=test_ca)


@pytest.fixture
def git_https_mtls_server(
    git_http_server_factory: Callable[..., GitHTTPServer], test_ca: TestCA
) -> GitHTTPServer:
    """HTTPS that requires a client certificate signed by `test_ca`."""
    return git_http_server_factory(tls=test_ca, require_client_cert=True)


@pytest.fixture
def http_proxy() -> Iterator[HTTPProxy]:
    """A forward proxy requiring basic auth (`.auth.username` / `.auth.password`)."""
    proxy = HTTPProxy(auth=BasicAuth("proxy-user", "proxy-pa55")).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def git_ssh_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Key pairs for SSH servers, generated once per test session."""
    return make_ssh_keys(tmp_path_factory.mktemp("ssh-keys"))


@pytest.fixture
def git_ssh_server(git_root: Path, tmp_path: Path, git_ssh_keys: Path) -> Iterator[GitSSHServer]:
    """A real sshd serving `git_root` through git-shell (see `GitSSHServer`)."""
    server = GitSSHServer(git_root, tmp_path / "sshd", keys=git_ssh_keys).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gpg_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GPGKeys]:
    """OpenPGP signing keys (`.plain`, `.protected`) and `.verify_home` for `git verify-commit`."""
    keys = GPGKeys.create(tmp_path_factory.mktemp("gpg"))
    yield keys
    keys.close()
