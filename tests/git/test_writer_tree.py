"""What a clone holds and what a commit takes from it: refs, modes, symlinks, submodules."""

import os
from pathlib import Path

import pytest

from fluxbus_git.errors import GitError, InvalidSpecError
from fluxbus_git.logic.auth import GitAuth
from fluxbus_git.logic.refs import RefSpec, checkout_for
from fluxbus_git.results import CommitAuthor
from fluxbus_git.testing import File, GitHTTPServer, GitRepo, HTTPProxy, Symlink
from fluxbus_git.writer import GitWriter

BOT = CommitAuthor("Flux Bot", "flux-bot@fluxbus.invalid")


def basic(server: GitHTTPServer) -> GitAuth:
    return GitAuth(username=server.username, password=server.password)


def local(clone: Path) -> GitRepo:
    return GitRepo(clone / ".git")


@pytest.mark.parametrize(
    ("ref", "branch"),
    [
        pytest.param(lambda r: RefSpec(branch="main"), "main", id="branch"),
        pytest.param(lambda r: RefSpec(commit=r.head("main"), branch="main"), "main", id="commit-on-branch"),
        pytest.param(lambda r: RefSpec(commit=r.head("main")), None, id="bare-commit"),
        pytest.param(lambda r: RefSpec(semver=">=1.0.0"), None, id="semver"),
        pytest.param(lambda r: RefSpec(name="refs/heads/main"), None, id="ref-name"),
    ],
)  # fmt: skip
async def test_a_clone_is_a_work_tree_at_the_checked_out_commit(
    app_repo: GitRepo,
    git_http_basic_server: GitHTTPServer,
    git_writer: GitWriter,
    tmp_path: Path,
    ref: object,
    branch: str | None,
) -> None:
    app_repo.tag("v1.0.0", target="main")
    url = git_http_basic_server.url(app_repo)
    clone = tmp_path / "clone"
    spec = ref(app_repo)  # type: ignore[operator]
    result = await git_writer.clone(url, checkout_for(spec), clone, basic(git_http_basic_server))
    assert (result.commit, result.branch) == (app_repo.head("main"), branch)
    repo = local(clone)
    assert repo.git("rev-parse", "HEAD").strip() == result.commit
    head = repo.git("symbolic-ref", "-q", "HEAD", check=False).strip()
    assert head == (f"refs/heads/{branch}" if branch else "")
    assert repo.git("--work-tree", str(clone), "status", "--porcelain") == ""
    assert repo.git("config", "remote.origin.url").strip() == url  # no credentials in it
    assert (clone / "app/deploy.yaml").read_text() == "image: ghcr.io/acme/app:1.0.0\n"


async def test_modes_symlinks_and_submodules_survive_a_commit(
    git_repo: GitRepo, git_http_basic_server: GitHTTPServer, git_writer: GitWriter, tmp_path: Path
) -> None:
    sub = "b" * 40
    git_repo.commit(
        {
            "run.sh": File("#!/bin/sh\n", executable=True),
            "current": Symlink("app"),
            "app/deploy.yaml": "image: a:1\n",
            ".gitmodules": '[submodule "vendor/lib"]\n\tpath = vendor/lib\n\turl = ../lib.git\n',
        },
        branch="main",
        gitlinks={"vendor/lib": sub},
    )
    url, auth = git_http_basic_server.url(git_repo), basic(git_http_basic_server)
    clone = tmp_path / "clone"
    await git_writer.clone(url, checkout_for(RefSpec(branch="main")), clone, auth)
    assert os.readlink(clone / "current") == "app"
    assert os.access(clone / "run.sh", os.X_OK)
    (clone / "app/deploy.yaml").write_text("image: a:2\n")
    (clone / "nested").mkdir()
    (clone / "nested/.git").mkdir()  # someone's nested repository: never committed
    (clone / "nested/.git/config").write_text("[core]\n")
    sha = await git_writer.commit(clone, "bump", BOT)
    await git_writer.push(clone, url, ["HEAD:refs/heads/main"], auth)
    listing = dict(
        (line.split("\t")[1], tuple(line.split("\t")[0].split()[:3:2]))
        for line in git_repo.git("ls-tree", "-r", sha or "").splitlines()
    )
    assert listing["run.sh"][0] == "100755"
    assert listing["current"][0] == "120000"
    assert listing["vendor/lib"] == ("160000", sub)
    assert listing["app/deploy.yaml"][0] == "100644"
    assert not any(path.startswith("nested") for path in listing)


async def test_a_push_goes_through_the_proxy(
    app_repo: GitRepo,
    git_http_basic_server: GitHTTPServer,
    git_writer: GitWriter,
    http_proxy: HTTPProxy,
    tmp_path: Path,
) -> None:
    from fluxbus_git.logic.auth import GitProxy

    proxy = GitProxy(http_proxy.address, http_proxy.auth.username, http_proxy.auth.password)
    url, auth = git_http_basic_server.url(app_repo), basic(git_http_basic_server)
    clone = tmp_path / "clone"
    await git_writer.clone(url, checkout_for(RefSpec(branch="main")), clone, auth, proxy=proxy)
    (clone / "x").write_text("x\n")
    sha = await git_writer.commit(clone, "x", BOT)
    before = http_proxy.requests
    await git_writer.push(clone, url, ["HEAD:refs/heads/main"], auth, proxy=proxy)
    assert http_proxy.requests > before
    assert app_repo.head("main") == sha


async def test_a_server_side_race_is_a_non_fast_forward_error(
    app_repo: GitRepo, git_http_basic_server: GitHTTPServer, git_writer: GitWriter, tmp_path: Path
) -> None:
    from fluxbus_git.errors import GitNonFastForwardError

    url, auth = git_http_basic_server.url(app_repo), basic(git_http_basic_server)
    theirs = app_repo.commit({"theirs": "1\n"}, branch="theirs")
    # Someone's push lands between the ref advertisement and the update: the hook moves main.
    # (git forbids ref updates from a quarantined hook: the racer leaves quarantine)
    app_repo.install_hook(
        "pre-receive",
        f"#!/bin/sh\nenv -u GIT_QUARANTINE_PATH git update-ref refs/heads/main {theirs}\n",
    )
    clone = tmp_path / "clone"
    await git_writer.clone(url, checkout_for(RefSpec(branch="main")), clone, auth)
    (clone / "x").write_text("x\n")
    await git_writer.commit(clone, "x", BOT)
    with pytest.raises(GitNonFastForwardError, match="refs/heads/main"):
        await git_writer.push(clone, url, ["HEAD:refs/heads/main"], auth)
    assert app_repo.head("main") == theirs


@pytest.mark.parametrize(
    ("author", "message"),
    [
        pytest.param(CommitAuthor("Bot", ""), "email is required", id="no-email"),
        pytest.param(CommitAuthor("Bot <x>", "b@x"), "may not contain", id="angle-brackets"),
        pytest.param(CommitAuthor("Bot", "b@x\nevil: 1"), "may not contain", id="newline"),
    ],
)
async def test_a_bad_author_is_an_invalid_spec(
    git_writer: GitWriter, tmp_path: Path, author: CommitAuthor, message: str
) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        await git_writer.commit(tmp_path, "x", author)


async def test_commit_outside_a_clone_is_a_git_error(git_writer: GitWriter, tmp_path: Path) -> None:
    with pytest.raises(GitError, match="not a clone"):
        await git_writer.commit(tmp_path, "x", BOT)


async def test_a_clone_larger_than_the_size_limit_is_refused_and_leaves_nothing(
    app_repo: GitRepo, git_http_basic_server: GitHTTPServer, git_writer: GitWriter, tmp_path: Path
) -> None:
    from fluxbus_git.errors import GitSizeLimitError

    app_repo.commit({"big.bin": os.urandom(64 * 1024)}, branch="main")
    url, auth = git_http_basic_server.url(app_repo), basic(git_http_basic_server)
    clone = tmp_path / "clone"
    with pytest.raises(GitSizeLimitError):
        await git_writer.clone(
            url, checkout_for(RefSpec(branch="main")), clone, auth, size_limit=16 * 1024
        )
    assert list(clone.iterdir()) == []
