"""Clone, edit, commit and push over smart HTTP(S) with GitWriter, read back by the real git."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from fluxbus_git.errors import (
    GitAuthError,
    GitNonFastForwardError,
    GitNotFoundError,
    GitPushRejectedError,
    GitTLSError,
    GitUnreachableError,
    InvalidSpecError,
)
from fluxbus_git.logic.auth import GitAuth
from fluxbus_git.logic.refs import RefSpec, checkout_for
from fluxbus_git.results import CommitAuthor
from fluxbus_git.testing import GitHTTPServer, GitRepo, free_port
from fluxbus_git.writer import GitWriter

BOT = CommitAuthor("Flux Bot", "flux-bot@fluxbus.invalid")
MAIN = checkout_for(RefSpec(branch="main"))


def basic(server: GitHTTPServer) -> GitAuth:
    return GitAuth(username=server.username, password=server.password, secret_name="git-creds")


def bump(clone: Path, tag: str = "1.0.1") -> None:
    (clone / "app/deploy.yaml").write_text(f"image: ghcr.io/acme/app:{tag}\n")


async def test_an_edit_is_committed_and_pushed_to_the_checkout_branch(
    app_repo: GitRepo, git_http_basic_server: GitHTTPServer, git_writer: GitWriter, tmp_path: Path
) -> None:
    url, auth = git_http_basic_server.url(app_repo), basic(git_http_basic_server)
    before = app_repo.head("main")
    cloned = await git_writer.clone(url, MAIN, tmp_path / "clone", auth)
    assert (cloned.commit, cloned.branch) == (before, "main")
    bump(tmp_path / "clone")
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2)))
    sha = await git_writer.commit(tmp_path / "clone", "Update app to 1.0.1", BOT, when=when)
    assert sha is not None
    pushed = await git_writer.push(tmp_path / "clone", url, ["HEAD:refs/heads/main"], auth)
    assert pushed.commit == sha
    assert pushed.refs == {"refs/heads/main": sha}
    assert app_repo.head("main") == sha
    [info] = app_repo.log("main")
    assert (info.author_name, info.author_email) == ("Flux Bot", "flux-bot@fluxbus.invalid")
    assert (info.committer_name, info.committer_email) == ("Flux Bot", "flux-bot@fluxbus.invalid")
    assert info.author_date == "2024-05-06 07:08:09 +0200"
    assert info.message == "Update app to 1.0.1\n"
    assert info.parents == (before,)
    assert not info.signed
    assert app_repo.show("app/deploy.yaml", "main") == "image: ghcr.io/acme/app:1.0.1\n"
    assert app_repo.show("app/config.yaml", "main") == "replicas: 2\n"
    app_repo.fsck()


async def test_added_and_removed_files_are_part_of_the_commit(
    app_repo: GitRepo, git_http_basic_server: GitHTTPServer, git_writer: GitWriter, tmp_path: Path
) -> None:
    url, auth = git_http_basic_server.url(app_repo), basic(git_http_basic_server)
    clone = tmp_path / "clone"
    await git_writer.clone(url, MAIN, clone, auth)
    (clone / "app/config.yaml").unlink()
    (clone / "app/new").mkdir()
    (clone / "app/new/policy.yaml").write_text("kind: ImagePolicy\n")
    (clone / "run.sh").write_text("#!/bin/sh\n")
    (clone / "run.sh").chmod(0o755)
    await git_writer.commit(clone, "reshape", BOT)
    await git_writer.push(clone, url, ["refs/heads/main:refs/heads/main"], auth)
    listing = app_repo.git("ls-tree", "-r", "main").splitlines()
    modes = {line.split("\t")[1]: line.split()[0] for line in listing}
    assert modes == {
        "README.md": "100644",
        "app/deploy.yaml": "100644",
        "app/new/policy.yaml": "100644",
        "run.sh": "100755",
    }
    app_repo.fsck()


async def test_an_unchanged_tree_makes_no_commit_and_the_clone_stays_clean(
    app_repo: GitRepo, git_http_basic_server: GitHTTPServer, git_writer: GitWriter, tmp_path: Path
) -> None:
    url, auth = git_http_basic_server.url(app_repo), basic(git_http_basic_server)
    clone = tmp_path / "clone"
    await git_writer.clone(url, MAIN, clone, auth)
    assert await git_writer.commit(clone, "nothing", BOT) is None
    bump(clone)
    bump(clone, "1.0.0")  # edited back: still nothing to commit
    assert await git_writer.commit(clone, "nothing", BOT) is None
    bump(clone)
    assert await git_writer.commit(clone, "bump", BOT) is not None
    assert await git_writer.commit(clone, "again", BOT) is None
    status = GitRepo(clone / ".git").git("--work-tree", str(clone), "status", "--porcelain")
    assert status == ""


async def test_a_push_to_another_branch_creates_it_from_the_checkout_branch(
    app_repo: GitRepo, git_http_basic_server: GitHTTPServer, git_writer: GitWriter, tmp_path: Path
) -> None:
    url, auth = git_http_basic_server.url(app_repo), basic(git_http_basic_server)
    main = app_repo.head("main")
    clone = tmp_path / "clone"
    await git_writer.clone(url, MAIN, clone, auth)
    bump(clone)
    sha = await git_writer.commit(clone, "bump", BOT)
    result = await git_writer.push(clone, url, ["HEAD:refs/heads/flux/auto"], auth)
    assert result.refs == {"refs/heads/flux/auto": sha}
    assert app_repo.head("main") == main
    assert app_repo.log("flux/auto")[0].parents == (main,)
    app_repo.fsck()


async def test_a_refspec_push_goes_to_the_branch_and_the_refspec_destination(
    app_repo: GitRepo, git_http_basic_server: GitHTTPServer, git_writer: GitWriter, tmp_path: Path
) -> None:
    url, auth = git_http_basic_server.url(app_repo), basic(git_http_basic_server)
    clone = tmp_path / "clone"
    await git_writer.clone(url, MAIN, clone, auth)
    bump(clone)
    sha = await git_writer.commit(clone, "bump", BOT)
    assert sha is not None
    result = await git_writer.push(
        clone, url, ["refs/heads/main:refs/heads/main", "refs/heads/main:refs/for/main"], auth
    )
    assert result.refs == {"refs/heads/main": sha, "refs/for/main": sha}
    assert app_repo.refs()["refs/for/main"] == sha == app_repo.head("main")
    # Pushing what the remote already has changes nothing and still reports it.
    again = await git_writer.push(clone, url, ["main"], auth)
    assert again.refs == {"refs/heads/main": sha}
    app_repo.fsck()


async def test_a_remote_branch_that_moved_is_not_overwritten(
    app_repo: GitRepo, git_http_basic_server: GitHTTPServer, git_writer: GitWriter, tmp_path: Path
) -> None:
    url, auth = git_http_basic_server.url(app_repo), basic(git_http_basic_server)
    clone = tmp_path / "clone"
    await git_writer.clone(url, MAIN, clone, auth)
    theirs = app_repo.commit({"app/deploy.yaml": "image: ghcr.io/acme/app:2.0.0\n"}, branch="main")
    bump(clone)
    await git_writer.commit(clone, "bump", BOT)
    git_http_basic_server.reset_counters()
    with pytest.raises(GitNonFastForwardError, match=r"refs/heads/main.*non-fast-forward") as err:
        await git_writer.push(clone, url, ["HEAD:refs/heads/main"], auth)
    assert err.value.ref == "refs/heads/main"
    assert app_repo.head("main") == theirs
    assert git_http_basic_server.pushes == 0  # refused from the advertisement: nothing sent
    app_repo.fsck()


async def test_a_moved_branch_the_clone_has_seen_but_does_not_contain_is_refused(
    app_repo: GitRepo, git_http_basic_server: GitHTTPServer, git_writer: GitWriter, tmp_path: Path
) -> None:
    url, auth = git_http_basic_server.url(app_repo), basic(git_http_basic_server)
    clone = tmp_path / "clone"
    await git_writer.clone(url, MAIN, clone, auth)
    bump(clone)
    first = await git_writer.commit(clone, "bump", BOT)
    await git_writer.push(clone, url, ["HEAD:refs/heads/auto"], auth)
    # The clone moves on from main's tip on another line: auto is not an ancestor.
    other = tmp_path / "other"
    await git_writer.clone(url, MAIN, other, auth)
    bump(other, "3.0.0")
    await git_writer.commit(other, "other line", BOT)
    with pytest.raises(GitNonFastForwardError):
        await git_writer.push(other, url, ["HEAD:refs/heads/auto"], auth)
    assert app_repo.head("auto") == first


async def test_force_replaces_a_push_branch_unless_the_server_forbids_it(
    app_repo: GitRepo, git_http_basic_server: GitHTTPServer, git_writer: GitWriter, tmp_path: Path
) -> None:
    url, auth = git_http_basic_server.url(app_repo), basic(git_http_basic_server)
    app_repo.commit({"x": "stale\n"}, branch="auto", start="master")
    clone = tmp_path / "clone"
    await git_writer.clone(url, MAIN, clone, auth)
    bump(clone)
    sha = await git_writer.commit(clone, "bump", BOT)
    await git_writer.push(clone, url, ["HEAD:refs/heads/auto"], auth, force=True)
    assert app_repo.head("auto") == sha
    # The server's own non-fast-forward refusal maps to the same error.
    app_repo.set_config("receive.denyNonFastForwards", "true")
    app_repo.commit({"y": "theirs\n"}, branch="main")
    with pytest.raises(GitNonFastForwardError, match="non-fast-forward"):
        await git_writer.push(clone, url, ["HEAD:refs/heads/main"], auth, force=True)
    app_repo.fsck()


async def test_a_hook_rejection_names_the_ref_and_the_servers_reason(
    app_repo: GitRepo, git_http_basic_server: GitHTTPServer, git_writer: GitWriter, tmp_path: Path
) -> None:
    url, auth = git_http_basic_server.url(app_repo), basic(git_http_basic_server)
    app_repo.install_hook("pre-receive", "#!/bin/sh\necho 'error: main is protected' >&2\nexit 1\n")
    main = app_repo.head("main")
    clone = tmp_path / "clone"
    await git_writer.clone(url, MAIN, clone, auth)
    bump(clone)
    await git_writer.commit(clone, "bump", BOT)
    with pytest.raises(GitPushRejectedError, match="main is protected") as err:
        await git_writer.push(clone, url, ["HEAD:refs/heads/main"], auth)
    assert err.value.ref == "refs/heads/main"
    assert "hook declined" in err.value.rejection
    assert app_repo.head("main") == main


async def test_push_options_reach_the_server_when_it_advertises_them(
    app_repo: GitRepo,
    git_http_server_factory: type[GitHTTPServer],
    git_writer: GitWriter,
    tmp_path: Path,
) -> None:
    server = git_http_server_factory(receive_pack=True, push_options=True)
    url = server.url(app_repo)
    seen = tmp_path / "options.txt"
    app_repo.install_hook(
        "pre-receive",
        "#!/bin/sh\ni=0\nwhile [ $i -lt ${GIT_PUSH_OPTION_COUNT:-0} ]; do\n"
        f'  eval "echo \\$GIT_PUSH_OPTION_$i" >> {seen}\n  i=$((i+1))\ndone\n',
    )
    clone = tmp_path / "clone"
    await git_writer.clone(url, MAIN, clone)
    bump(clone)
    await git_writer.commit(clone, "bump", BOT)
    options = {"merge_request.create": "", "merge_request.target": "release"}
    await git_writer.push(clone, url, ["HEAD:refs/heads/dev"], options=options)
    assert seen.read_text().splitlines() == ["merge_request.create", "merge_request.target=release"]


async def test_push_options_are_left_out_when_the_server_does_not_support_them(
    app_repo: GitRepo,
    git_http_server_factory: type[GitHTTPServer],
    git_writer: GitWriter,
    tmp_path: Path,
) -> None:
    server = git_http_server_factory(receive_pack=True)
    url = server.url(app_repo)
    clone = tmp_path / "clone"
    await git_writer.clone(url, MAIN, clone)
    bump(clone)
    sha = await git_writer.commit(clone, "bump", BOT)
    await git_writer.push(clone, url, ["HEAD:refs/heads/main"], options={"topic": "x"})
    assert app_repo.head("main") == sha


async def test_bearer_token_clone_and_push(
    app_repo: GitRepo, git_http_bearer_server: GitHTTPServer, git_writer: GitWriter, tmp_path: Path
) -> None:
    url = git_http_bearer_server.url(app_repo)
    auth = GitAuth(bearer_token=git_http_bearer_server.token)
    clone = tmp_path / "clone"
    await git_writer.clone(url, MAIN, clone, auth)
    bump(clone)
    sha = await git_writer.commit(clone, "bump", BOT)
    await git_writer.push(clone, url, ["HEAD:refs/heads/main"], auth)
    assert app_repo.head("main") == sha


async def test_https_with_the_ca_from_the_secret(
    app_repo: GitRepo,
    git_http_server_factory: type[GitHTTPServer],
    git_writer: GitWriter,
    test_ca: object,
    tmp_path: Path,
) -> None:
    server = git_http_server_factory(tls=test_ca, receive_pack=True)
    url = server.url(app_repo)
    clone = tmp_path / "clone"
    with pytest.raises(GitTLSError, match="not trusted"):
        await git_writer.clone(url, MAIN, clone)
    assert list(clone.iterdir()) == []  # a failed clone leaves the directory empty
    auth = GitAuth(ca_cert=server.ca.ca_pem)
    await git_writer.clone(url, MAIN, clone, auth)
    bump(clone)
    sha = await git_writer.commit(clone, "bump", BOT)
    with pytest.raises(GitTLSError):
        await git_writer.push(clone, url, ["HEAD:refs/heads/main"])
    await git_writer.push(clone, url, ["HEAD:refs/heads/main"], auth)
    assert app_repo.head("main") == sha
    app_repo.fsck()


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param(GitAuth(username="fluxbus", password="wr0ng-pa55"), id="wrong-password"),
        pytest.param(None, id="no-credentials"),
    ],
)
async def test_wrong_credentials_are_an_auth_error_without_the_secret(
    app_repo: GitRepo,
    git_http_basic_server: GitHTTPServer,
    git_writer: GitWriter,
    tmp_path: Path,
    auth: GitAuth | None,
) -> None:
    url, good = git_http_basic_server.url(app_repo), basic(git_http_basic_server)
    with pytest.raises(GitAuthError) as cloning:
        await git_writer.clone(url, MAIN, tmp_path / "refused", auth)
    clone = tmp_path / "clone"
    await git_writer.clone(url, MAIN, clone, good)
    bump(clone)
    await git_writer.commit(clone, "bump", BOT)
    with pytest.raises(GitAuthError) as pushing:
        await git_writer.push(clone, url, ["HEAD:refs/heads/main"], auth)
    for err in (cloning.value, pushing.value):
        assert "wr0ng-pa55" not in str(err)
        assert git_http_basic_server.password not in str(err)


async def test_an_anonymous_push_to_a_read_only_server_is_refused(
    app_repo: GitRepo, git_http_server: GitHTTPServer, git_writer: GitWriter, tmp_path: Path
) -> None:
    url = git_http_server.url(app_repo)
    main = app_repo.head("main")
    clone = tmp_path / "clone"
    await git_writer.clone(url, MAIN, clone)
    bump(clone)
    await git_writer.commit(clone, "bump", BOT)
    with pytest.raises(GitAuthError, match="403"):
        await git_writer.push(clone, url, ["HEAD:refs/heads/main"])
    assert app_repo.head("main") == main


async def test_an_unreachable_host_is_an_unreachable_error(
    git_writer: GitWriter, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}/repo.git"
    with pytest.raises(GitUnreachableError, match="unable to reach"):
        await git_writer.clone(url, MAIN, tmp_path / "clone")


async def test_a_push_to_a_server_that_went_away_is_an_unreachable_error(
    app_repo: GitRepo, git_http_basic_server: GitHTTPServer, git_writer: GitWriter, tmp_path: Path
) -> None:
    url, auth = git_http_basic_server.url(app_repo), basic(git_http_basic_server)
    clone = tmp_path / "clone"
    await git_writer.clone(url, MAIN, clone, auth)
    bump(clone)
    await git_writer.commit(clone, "bump", BOT)
    git_http_basic_server.stop()
    with pytest.raises(GitUnreachableError):
        await git_writer.push(clone, url, ["HEAD:refs/heads/main"], auth)


async def test_a_missing_branch_is_not_found(
    app_repo: GitRepo, git_http_basic_server: GitHTTPServer, git_writer: GitWriter, tmp_path: Path
) -> None:
    url, auth = git_http_basic_server.url(app_repo), basic(git_http_basic_server)
    with pytest.raises(GitNotFoundError, match="branch 'nope' not found"):
        await git_writer.clone(url, checkout_for(RefSpec(branch="nope")), tmp_path / "c", auth)


@pytest.mark.parametrize(
    ("refspec", "message"),
    [
        pytest.param("+HEAD:refs/heads/main", "force", id="force"),
        pytest.param(":refs/heads/main", "deleting", id="delete"),
        pytest.param("refs/heads/*:refs/heads/*", "patterns", id="pattern"),
        pytest.param("HEAD", "needs a destination", id="bare-head"),
        pytest.param("HEAD:refs/heads/a..b", "invalid Git reference", id="bad-name"),
        pytest.param("refs/heads/nope:refs/heads/main", "does not exist", id="unknown-source"),
    ],
)
async def test_bad_refspecs_are_refused_before_connecting(
    app_repo: GitRepo,
    git_http_basic_server: GitHTTPServer,
    git_writer: GitWriter,
    tmp_path: Path,
    refspec: str,
    message: str,
) -> None:
    url, auth = git_http_basic_server.url(app_repo), basic(git_http_basic_server)
    clone = tmp_path / "clone"
    await git_writer.clone(url, MAIN, clone, auth)
    with pytest.raises(InvalidSpecError, match=message):
        await git_writer.push(clone, url, [refspec], auth)


async def test_a_tag_checkout_is_detached_and_can_be_pushed_to_a_branch(
    app_repo: GitRepo, git_http_basic_server: GitHTTPServer, git_writer: GitWriter, tmp_path: Path
) -> None:
    url, auth = git_http_basic_server.url(app_repo), basic(git_http_basic_server)
    tagged = app_repo.head("main")
    app_repo.tag("v1.0.0", target="main", annotated=True)
    clone = tmp_path / "clone"
    cloned = await git_writer.clone(url, checkout_for(RefSpec(tag="v1.0.0")), clone, auth)
    assert (cloned.commit, cloned.branch) == (tagged, None)
    bump(clone)
    sha = await git_writer.commit(clone, "bump", BOT, when=datetime(2024, 1, 1, tzinfo=UTC))
    await git_writer.push(clone, url, ["HEAD:refs/heads/release"], auth)
    assert app_repo.head("release") == sha
    assert app_repo.log("release")[0].author_time == int(
        datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    )
