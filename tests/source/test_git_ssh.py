"""Fetching over SSH through a real sshd: keys, passphrases, and host keys never trusted blindly."""

from pathlib import Path

import pytest

from fluxbus_common.testing.plugin import wait_for
from fluxbus_git.client import GitClient
from fluxbus_git.errors import (
    GitAuthError,
    GitCredentialsError,
    GitHostKeyError,
    GitNotFoundError,
    GitUnreachableError,
)
from fluxbus_git.logic.auth import GitAuth
from fluxbus_git.logic.refs import RefSpec, checkout_for
from fluxbus_git.testing import GitRepo, GitSSHServer


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    git_repo.commit({"app.yaml": "replicas: 1\n"}, message="first")
    git_repo.tag("v1.0.0", annotated=True)
    return git_repo


def secret(server: GitSSHServer, **overrides: bytes | str | None) -> GitAuth:
    data = {"identity": server.identity, "known_hosts": server.known_hosts} | overrides
    return GitAuth.from_secret({k: v for k, v in data.items() if v is not None}, name="ssh-creds")


async def test_a_key_and_known_hosts_fetch_the_repository(
    repo: GitRepo, git_ssh_server: GitSSHServer, git_client: GitClient, tmp_path: Path
) -> None:
    result = await git_client.fetch(
        git_ssh_server.url(repo),
        checkout_for(RefSpec(tag="v1.0.0")),
        tmp_path / "co",
        secret(git_ssh_server),
    )
    assert result.resolved.revision == f"v1.0.0@sha1:{repo.head()}"
    assert (tmp_path / "co/app.yaml").read_text() == "replicas: 1\n"


async def test_a_passphrase_protected_key_works_with_its_password(
    repo: GitRepo, git_ssh_server: GitSSHServer, git_client: GitClient
) -> None:
    s = git_ssh_server
    refs = await git_client.ls_remote(
        s.url(repo), secret(s, identity=s.identity_encrypted, password=s.passphrase)
    )
    assert refs["refs/heads/master"] == repo.head()


async def test_a_wrong_passphrase_is_an_auth_error_that_never_shows_it(
    repo: GitRepo, git_ssh_server: GitSSHServer, git_client: GitClient
) -> None:
    s = git_ssh_server
    with pytest.raises(GitAuthError) as info:
        await git_client.ls_remote(
            s.url(repo), secret(s, identity=s.identity_encrypted, password="not-the-passphrase")
        )
    assert "not-the-passphrase" not in str(info.value)


async def test_an_unauthorized_key_is_an_auth_error(
    repo: GitRepo, git_ssh_server: GitSSHServer, git_client: GitClient
) -> None:
    s = git_ssh_server
    with pytest.raises(
        GitAuthError, match=r"key in 'identity' of secret 'ssh-creds' is not authorized"
    ):
        await git_client.ls_remote(s.url(repo), secret(s, identity=s.other_identity))


async def test_an_unknown_host_key_is_refused(
    repo: GitRepo, git_ssh_server: GitSSHServer, git_client: GitClient
) -> None:
    s = git_ssh_server
    with pytest.raises(GitHostKeyError, match=r"not in 'known_hosts' of secret 'ssh-creds'"):
        await git_client.ls_remote(s.url(repo), secret(s, known_hosts=s.other_known_hosts))
    assert s.sessions == 0


async def test_known_hosts_for_another_host_is_refused(
    repo: GitRepo, git_ssh_server: GitSSHServer, git_client: GitClient
) -> None:
    s = git_ssh_server
    elsewhere = s.known_hosts.replace(b"[127.0.0.1]", b"[git.example.com]")
    with pytest.raises(GitHostKeyError):
        await git_client.ls_remote(s.url(repo), secret(s, known_hosts=elsewhere))


async def test_missing_known_hosts_is_refused_before_connecting(
    repo: GitRepo, git_ssh_server: GitSSHServer, git_client: GitClient
) -> None:
    s = git_ssh_server
    with pytest.raises(
        GitCredentialsError,
        match=r"set 'known_hosts' in secret 'ssh-creds'.*never accepted blindly",
    ):
        await git_client.ls_remote(
            s.url(repo), GitAuth(identity=s.identity, secret_name="ssh-creds")
        )
    with pytest.raises(GitCredentialsError, match=r"set 'identity'"):
        await git_client.ls_remote(s.url(repo))
    assert s.sessions == 0


async def test_a_missing_repository_over_ssh_is_not_found(
    git_ssh_server: GitSSHServer, git_client: GitClient
) -> None:
    with pytest.raises(GitNotFoundError, match="repository not found"):
        await git_client.ls_remote(git_ssh_server.url("absent"), secret(git_ssh_server))


async def test_ssh_recovers_when_sshd_comes_back(
    repo: GitRepo, git_ssh_server: GitSSHServer, git_client: GitClient
) -> None:
    s = git_ssh_server
    s.stop()
    with pytest.raises(GitUnreachableError, match="Connection refused"):
        await git_client.ls_remote(s.url(repo), secret(s))
    s.start()
    assert "refs/heads/master" in await git_client.ls_remote(s.url(repo), secret(s))


async def test_relative_submodules_are_fetched_over_ssh_with_the_same_key(
    git_repo_factory, git_ssh_server: GitSSHServer, git_client: GitClient, tmp_path: Path
) -> None:
    lib = git_repo_factory("lib")
    lib_sha = lib.commit({"lib.yaml": "lib: 1\n"})
    main = git_repo_factory("main")
    main.commit(
        {".gitmodules": '[submodule "lib"]\n\tpath = vendor/lib\n\turl = ../lib.git\n'},
        gitlinks={"vendor/lib": lib_sha},
    )
    result = await git_client.fetch(
        git_ssh_server.url(main),
        checkout_for(None),
        tmp_path / "co",
        secret(git_ssh_server),
        recurse_submodules=True,
    )
    assert (result.path / "vendor/lib/lib.yaml").read_text() == "lib: 1\n"


async def test_a_cancelled_fetch_leaves_no_ssh_process_behind(
    repo: GitRepo, git_ssh_server: GitSSHServer, git_client: GitClient, tmp_path: Path
) -> None:
    import asyncio

    task = asyncio.create_task(
        git_client.fetch(
            git_ssh_server.url(repo), checkout_for(None), tmp_path / "co", secret(git_ssh_server)
        )
    )
    await asyncio.sleep(0)  # let the fetch start, then give up on it
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async def no_ssh_left() -> bool:
        pgrep = await asyncio.create_subprocess_exec(
            "pgrep", "-f", f"ssh .*-p {git_ssh_server.port} ", stdout=asyncio.subprocess.PIPE
        )
        return (await pgrep.communicate())[0].split() == []

    # the fetch's worker thread kills its ssh child when it sees the cancellation; on a
    # loaded machine that takes a moment, so wait (bounded) instead of looking once
    await wait_for(no_ssh_left, timeout=10, message="the cancelled fetch's ssh to exit")
