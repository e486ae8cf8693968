"""Clone, commit and push over SSH through a real sshd: key auth, known_hosts, timeouts."""

import socket
from pathlib import Path

import pytest

from fluxbus_git.errors import (
    GitAuthError,
    GitHostKeyError,
    GitNonFastForwardError,
    GitUnreachableError,
)
from fluxbus_git.logic.auth import GitAuth
from fluxbus_git.logic.refs import RefSpec, checkout_for
from fluxbus_git.results import CommitAuthor
from fluxbus_git.testing import GitRepo, GitSSHServer
from fluxbus_git.writer import GitWriter

BOT = CommitAuthor("Flux Bot", "flux-bot@fluxbus.invalid")
MAIN = checkout_for(RefSpec(branch="main"))


def secret(server: GitSSHServer, **overrides: bytes | str | None) -> GitAuth:
    data = {"identity": server.identity, "known_hosts": server.known_hosts} | overrides
    return GitAuth.from_secret({k: v for k, v in data.items() if v is not None}, name="ssh-creds")


async def test_a_key_and_known_hosts_clone_commit_and_push(
    app_repo: GitRepo, git_ssh_server: GitSSHServer, git_writer: GitWriter, tmp_path: Path
) -> None:
    url, auth = git_ssh_server.url(app_repo), secret(git_ssh_server)
    clone = tmp_path / "clone"
    cloned = await git_writer.clone(url, MAIN, clone, auth)
    assert cloned.branch == "main"
    (clone / "app/deploy.yaml").write_text("image: ghcr.io/acme/app:1.0.1\n")
    sha = await git_writer.commit(clone, "Update app over ssh", BOT)
    result = await git_writer.push(clone, url, ["HEAD:refs/heads/main"], auth)
    assert result.refs == {"refs/heads/main": sha}
    assert app_repo.head("main") == sha
    assert app_repo.show("app/deploy.yaml", "main") == "image: ghcr.io/acme/app:1.0.1\n"
    assert app_repo.log("main")[0].message == "Update app over ssh\n"
    assert any("receive-pack" in line for line in git_ssh_server.log.read_text().splitlines())
    app_repo.fsck()


async def test_a_passphrase_protected_key_pushes_with_its_password(
    app_repo: GitRepo, git_ssh_server: GitSSHServer, git_writer: GitWriter, tmp_path: Path
) -> None:
    s = git_ssh_server
    url, auth = s.url(app_repo), secret(s, identity=s.identity_encrypted, password=s.passphrase)
    clone = tmp_path / "clone"
    await git_writer.clone(url, MAIN, clone, auth)
    (clone / "NOTES.md").write_text("automated\n")
    sha = await git_writer.commit(clone, "notes", BOT)
    await git_writer.push(clone, url, ["HEAD:refs/heads/notes"], auth)
    assert app_repo.head("notes") == sha


async def test_a_moved_branch_is_a_non_fast_forward_error_over_ssh(
    app_repo: GitRepo, git_ssh_server: GitSSHServer, git_writer: GitWriter, tmp_path: Path
) -> None:
    url, auth = git_ssh_server.url(app_repo), secret(git_ssh_server)
    clone = tmp_path / "clone"
    await git_writer.clone(url, MAIN, clone, auth)
    theirs = app_repo.commit({"theirs.txt": "x\n"}, branch="main")
    (clone / "ours.txt").write_text("y\n")
    await git_writer.commit(clone, "ours", BOT)
    with pytest.raises(GitNonFastForwardError):
        await git_writer.push(clone, url, ["HEAD:refs/heads/main"], auth)
    assert app_repo.head("main") == theirs
    app_repo.fsck()


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        pytest.param(
            {"known_hosts": "other"}, GitHostKeyError, "not in 'known_hosts'", id="host-key"
        ),
        pytest.param(
            {"identity": "intruder"}, GitAuthError, "is not authorized", id="unauthorized-key"
        ),
    ],
)
async def test_a_push_with_bad_ssh_credentials_fails_clearly(
    app_repo: GitRepo,
    git_ssh_server: GitSSHServer,
    git_writer: GitWriter,
    tmp_path: Path,
    overrides: dict[str, str],
    error: type[Exception],
    message: str,
) -> None:
    s = git_ssh_server
    url = s.url(app_repo)
    clone = tmp_path / "clone"
    await git_writer.clone(url, MAIN, clone, secret(s))
    (clone / "x").write_text("x\n")
    await git_writer.commit(clone, "x", BOT)
    values = {"other": s.other_known_hosts, "intruder": s.other_identity}
    bad = secret(s, **{k: values[v] for k, v in overrides.items()})
    main = app_repo.head("main")
    with pytest.raises(error, match=message):
        await git_writer.push(clone, url, ["HEAD:refs/heads/main"], bad)
    assert app_repo.head("main") == main


async def test_a_silent_server_hits_the_push_timeout(
    app_repo: GitRepo, git_ssh_server: GitSSHServer, git_writer: GitWriter, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    await git_writer.clone(git_ssh_server.url(app_repo), MAIN, clone, secret(git_ssh_server))
    (clone / "x").write_text("x\n")
    await git_writer.commit(clone, "x", BOT)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        for url in (f"http://127.0.0.1:{port}/repo.git", f"ssh://git@127.0.0.1:{port}/repo.git"):
            with pytest.raises(GitUnreachableError, match=r"timed out after 0\.5s|did not answer"):
                await git_writer.push(
                    clone, url, ["HEAD:refs/heads/main"], secret(git_ssh_server), timeout=0.5
                )
