"""spec.url accepts http(s) and ssh addresses only, with a fix-it message otherwise."""

import pytest

from fluxbus_git.errors import InvalidURLError
from fluxbus_git.logic.url import parse_git_url


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "path"),
    [
        pytest.param(
            "https://github.com/org/repo", "https", "github.com", None, "/org/repo", id="https"
        ),
        pytest.param(
            "http://127.0.0.1:8080/r.git", "http", "127.0.0.1", 8080, "/r.git", id="http-port"
        ),
        pytest.param(
            "ssh://git@github.com/org/repo.git",
            "ssh",
            "github.com",
            None,
            "/org/repo.git",
            id="ssh",
        ),
        pytest.param(
            "ssh://git@host:2222/org/repo.git", "ssh", "host", 2222, "/org/repo.git", id="ssh-port"
        ),
    ],
)
def test_http_https_and_ssh_urls_are_accepted(
    url: str, scheme: str, host: str, port: int | None, path: str
) -> None:
    parsed = parse_git_url(url)
    assert (parsed.scheme, parsed.host, parsed.port, parsed.path) == (scheme, host, port, path)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param(
            "git@github.com:org/repo.git",
            r"scp-like.*use 'ssh://git@github.com/org/repo.git'",
            id="scp-like",
        ),
        pytest.param(
            "ssh://git@gitlab.com:root_group/repo.git",
            r"use 'ssh://git@gitlab.com/root_group/repo.git'",
            id="ssh-with-scp-path",
        ),
        pytest.param("file:///etc/passwd", r"file:// URLs are not allowed", id="file"),
        pytest.param("/srv/git/repo.git", r"local paths are not allowed", id="bare-path"),
        pytest.param(
            "git://example.com/repo.git", r"scheme 'git://' is not supported", id="git-protocol"
        ),
        pytest.param(
            "https://user:hunter2@example.com/r.git", r"spec\.secretRef", id="password-in-url"
        ),
        pytest.param("https:///repo.git", r"no host", id="no-host"),
        pytest.param("", r"empty URL", id="empty"),
    ],
)
def test_unsupported_urls_are_rejected_with_the_fix(url: str, message: str) -> None:
    with pytest.raises(InvalidURLError, match=message) as info:
        parse_git_url(url)
    assert info.value.reason == "URLInvalid"
    assert "hunter2" not in str(info.value)


def test_redacted_url_keeps_the_ssh_user_but_never_a_password() -> None:
    assert parse_git_url("ssh://git@host:22/r.git").redacted() == "ssh://git@host:22/r.git"
    assert parse_git_url("https://bot@host/r.git").redacted() == "https://host/r.git"
