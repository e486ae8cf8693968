"""Git over http(s) through a proxy from spec.proxySecretRef."""

from pathlib import Path

import pytest

from fluxbus_git.client import GitClient
from fluxbus_git.errors import GitAuthError, GitCredentialsError, GitUnreachableError
from fluxbus_git.logic.auth import GitAuth, GitProxy
from fluxbus_git.logic.refs import checkout_for
from fluxbus_git.testing import GitHTTPServer, GitRepo, HTTPProxy


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    git_repo.commit({"app.yaml": "a: 1\n"})
    return git_repo


def proxy_secret(proxy: HTTPProxy, password: str | None = None) -> GitProxy:
    assert proxy.auth is not None
    return GitProxy.from_secret(
        {
            "address": proxy.address,
            "username": proxy.auth.username,
            "password": password or proxy.auth.password,
        },
        name="proxy",
    )


async def test_http_fetches_go_through_the_proxy(
    repo: GitRepo,
    git_http_server: GitHTTPServer,
    http_proxy: HTTPProxy,
    git_client: GitClient,
    tmp_path: Path,
) -> None:
    result = await git_client.fetch(
        git_http_server.url(repo),
        checkout_for(None),
        tmp_path / "co",
        proxy=proxy_secret(http_proxy),
    )
    assert result.files == 1
    assert http_proxy.requests >= 2 and git_http_server.fetches == 1


async def test_https_is_tunnelled_through_the_proxy(
    repo: GitRepo, git_https_server: GitHTTPServer, http_proxy: HTTPProxy, git_client: GitClient
) -> None:
    refs = await git_client.ls_remote(
        git_https_server.url(repo),
        GitAuth(ca_cert=git_https_server.ca.ca_pem),
        proxy=proxy_secret(http_proxy),
    )
    assert refs["refs/heads/master"] == repo.head()
    assert http_proxy.tunnels == 1


async def test_wrong_proxy_credentials_are_an_auth_error_naming_the_proxy(
    repo: GitRepo,
    git_http_server: GitHTTPServer,
    git_https_server: GitHTTPServer,
    http_proxy: HTTPProxy,
    git_client: GitClient,
) -> None:
    with pytest.raises(
        GitAuthError, match=r"proxy 'http://127\.0\.0\.1:\d+' refused the credentials"
    ) as info:
        await git_client.ls_remote(
            git_https_server.url(repo),
            GitAuth(ca_cert=git_https_server.ca.ca_pem),
            proxy=proxy_secret(http_proxy, password="wrong-proxy-pw"),
        )
    assert "wrong-proxy-pw" not in str(info.value)
    with pytest.raises(GitAuthError, match=r"proxy .* requires credentials"):
        await git_client.ls_remote(git_http_server.url(repo), proxy=GitProxy(http_proxy.address))


async def test_a_proxy_that_is_down_is_unreachable(
    repo: GitRepo, git_http_server: GitHTTPServer, http_proxy: HTTPProxy, git_client: GitClient
) -> None:
    secret = proxy_secret(http_proxy)
    http_proxy.stop()
    with pytest.raises(GitUnreachableError, match="unable to reach proxy"):
        await git_client.ls_remote(git_http_server.url(repo), proxy=secret)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({}, "'address' is required", id="no-address"),
        pytest.param(
            {"address": "socks5://127.0.0.1:1080"}, "scheme 'socks5' is not supported", id="socks"
        ),
        pytest.param(
            {"address": "http://u:p@proxy:3128"}, "not the address", id="creds-in-address"
        ),
    ],
)
def test_bad_proxy_secrets_are_credentials_errors(data: dict[str, str], message: str) -> None:
    with pytest.raises(GitCredentialsError, match=message):
        GitProxy.from_secret(data, name="proxy")
