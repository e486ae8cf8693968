"""Fetching Git repositories over smart HTTP(S): refs, auth, polling cost, failures."""

from pathlib import Path

import pytest

from fluxbus_git.client import GitClient
from fluxbus_git.errors import (
    GitAuthError,
    GitCredentialsError,
    GitError,
    GitNoSemverMatchError,
    GitNotFoundError,
    GitSizeLimitError,
    GitTLSError,
    GitUnreachableError,
    InvalidURLError,
)
from fluxbus_git.logic.auth import GitAuth
from fluxbus_git.logic.refs import RefSpec, checkout_for, same_revision
from fluxbus_git.testing import (
    File,
    GitHTTPServer,
    GitRepo,
    Symlink,
    TestCA,
)
from fluxbus_source.artifact import build_tarball


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    """master: two commits; main; feature/x; tags v1.0.0 (annotated), v1.1.0, v2.0.0-rc.1; a PR ref."""
    git_repo.commit({"app/deploy.yaml": "replicas: 1\n", "README.md": "hello\n"}, message="first")
    git_repo.tag("v1.0.0", annotated=True)
    git_repo.commit({"app/deploy.yaml": "replicas: 2\n"}, message="second")
    git_repo.tag("v1.1.0")
    git_repo.commit({"app/deploy.yaml": "replicas: 3\n"}, branch="main", message="on main")
    git_repo.commit({"feature.yaml": "x: 1\n"}, branch="feature/x", message="feature")
    git_repo.tag("v2.0.0-rc.1", target="feature/x")
    git_repo.set_ref("refs/pull/1/head", git_repo.head("feature/x"))
    return git_repo


def files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


async def test_the_default_ref_is_the_master_branch(
    repo: GitRepo, git_http_server: GitHTTPServer, git_client: GitClient, tmp_path: Path
) -> None:
    result = await git_client.fetch(git_http_server.url(repo), checkout_for(None), tmp_path / "co")
    assert result.resolved.revision == f"master@sha1:{repo.head('master')}"
    assert result.message == "second"
    assert files(tmp_path / "co") == {"README.md": "hello\n", "app/deploy.yaml": "replicas: 2\n"}


@pytest.mark.parametrize(
    ("ref", "revision_of", "content"),
    [
        pytest.param(
            RefSpec(branch="main"),
            lambda r: f"main@sha1:{r.head('main')}",
            "replicas: 3\n",
            id="branch",
        ),
        pytest.param(
            RefSpec(branch="feature/x"),
            lambda r: f"feature/x@sha1:{r.head('feature/x')}",
            "replicas: 2\n",
            id="branch-with-slash",
        ),
        pytest.param(
            RefSpec(tag="v1.0.0"),
            lambda r: f"v1.0.0@sha1:{r.refs()['refs/tags/v1.1.0'] and first(r)}",
            "replicas: 1\n",
            id="annotated-tag",
        ),
        pytest.param(
            RefSpec(tag="v1.1.0"),
            lambda r: f"v1.1.0@sha1:{r.head('master')}",
            "replicas: 2\n",
            id="lightweight-tag",
        ),
        pytest.param(
            RefSpec(semver="1.x"),
            lambda r: f"v1.1.0@sha1:{r.head('master')}",
            "replicas: 2\n",
            id="semver",
        ),
        pytest.param(
            RefSpec(semver="<1.1.0"),
            lambda r: f"v1.0.0@sha1:{first(r)}",
            "replicas: 1\n",
            id="semver-annotated",
        ),
        pytest.param(
            RefSpec(name="refs/pull/1/head"),
            lambda r: f"refs/pull/1/head@sha1:{r.head('feature/x')}",
            "replicas: 2\n",
            id="name",
        ),
        pytest.param(
            RefSpec(commit="FIRST"), lambda r: f"sha1:{first(r)}", "replicas: 1\n", id="bare-commit"
        ),
        pytest.param(
            RefSpec(commit="FIRST", branch="master"),
            lambda r: f"master@sha1:{first(r)}",
            "replicas: 1\n",
            id="commit-in-branch",
        ),
        pytest.param(
            RefSpec(branch="main", tag="v1.0.0", name="refs/heads/main"),
            lambda r: f"refs/heads/main@sha1:{r.head('main')}",
            "replicas: 3\n",
            id="name-wins-over-tag-and-branch",
        ),
    ],
)
async def test_every_ref_type_checks_out_its_revision(
    repo: GitRepo,
    git_http_server: GitHTTPServer,
    git_client: GitClient,
    tmp_path: Path,
    ref: RefSpec,
    revision_of,
    content: str,
) -> None:
    if ref.commit == "FIRST":
        ref = RefSpec(commit=first(repo), branch=ref.branch)
    url = git_http_server.url(repo)
    result = await git_client.fetch(url, checkout_for(ref), tmp_path / "co")
    assert result.resolved.revision == revision_of(repo)
    assert (tmp_path / "co/app/deploy.yaml").read_text() == content
    # ls-remote resolution agrees with what the fetch checked out
    resolved = await git_client.resolve(url, checkout_for(ref))
    assert same_revision(resolved.revision, result.resolved.revision)


def first(repo: GitRepo) -> str:
    return repo.repo[repo.head("master").encode()].parents[0].decode()


async def test_a_commit_outside_its_branch_is_not_found(
    repo: GitRepo, git_http_server: GitHTTPServer, git_client: GitClient, tmp_path: Path
) -> None:
    feature_only = repo.head("feature/x")
    with pytest.raises(
        GitNotFoundError, match=f"commit '{feature_only}' not found in branch 'main'"
    ):
        await git_client.fetch(
            git_http_server.url(repo),
            checkout_for(RefSpec(commit=feature_only, branch="main")),
            tmp_path / "co",
        )


async def test_an_unknown_commit_is_not_found(
    repo: GitRepo, git_http_server: GitHTTPServer, git_client: GitClient, tmp_path: Path
) -> None:
    with pytest.raises(GitError, match="0123456789"):
        await git_client.fetch(
            git_http_server.url(repo),
            checkout_for(RefSpec(commit="0123456789" * 4)),
            tmp_path / "co",
        )


async def test_a_missing_branch_is_a_clear_not_found_error(
    repo: GitRepo, git_http_server: GitHTTPServer, git_client: GitClient, tmp_path: Path
) -> None:
    url = git_http_server.url(repo)
    with pytest.raises(GitNotFoundError, match=r"branch 'nope' not found in .*repo\.git"):
        await git_client.fetch(url, checkout_for(RefSpec(branch="nope")), tmp_path / "co")
    with pytest.raises(GitNotFoundError, match=r"tag 'v9\.9\.9' not found"):
        await git_client.resolve(url, checkout_for(RefSpec(tag="v9.9.9")))


async def test_a_semver_range_without_a_match_is_a_clear_error(
    repo: GitRepo, git_http_server: GitHTTPServer, git_client: GitClient, tmp_path: Path
) -> None:
    with pytest.raises(GitNoSemverMatchError, match=r"no match found for semver: >=3\.0\.0"):
        await git_client.fetch(
            git_http_server.url(repo), checkout_for(RefSpec(semver=">=3.0.0")), tmp_path / "co"
        )


async def test_a_missing_repository_is_not_found(
    git_http_server: GitHTTPServer, git_client: GitClient
) -> None:
    with pytest.raises(GitNotFoundError, match="repository not found"):
        await git_client.ls_remote(git_http_server.url("absent"))


async def test_an_unchanged_revision_costs_one_ref_listing_and_no_fetch(
    repo: GitRepo, git_http_server: GitHTTPServer, git_client: GitClient, tmp_path: Path
) -> None:
    url, checkout = git_http_server.url(repo), checkout_for(RefSpec(branch="main"))
    stored = (await git_client.fetch(url, checkout, tmp_path / "co")).resolved.revision
    git_http_server.reset_counters()

    polled = await git_client.resolve(url, checkout)

    assert same_revision(polled.revision, stored)
    assert (git_http_server.requests, git_http_server.ref_listings, git_http_server.fetches) == (
        1,
        1,
        0,
    )


async def test_a_new_commit_is_fetched_shallow(
    repo: GitRepo, git_http_server: GitHTTPServer, git_client: GitClient, tmp_path: Path
) -> None:
    url, checkout = git_http_server.url(repo), checkout_for(RefSpec(branch="main"))
    before = await git_client.fetch(url, checkout, tmp_path / "one")
    new = repo.commit({"app/deploy.yaml": "replicas: 4\n"}, branch="main", message="scale up")
    git_http_server.reset_counters()

    polled = await git_client.resolve(url, checkout)
    after = await git_client.fetch(url, checkout, tmp_path / "two")

    assert not same_revision(polled.revision, before.resolved.revision)
    assert after.resolved.revision == polled.revision == f"main@sha1:{new}"
    assert after.message == "scale up"
    assert git_http_server.fetches == 1
    assert (tmp_path / "two/app/deploy.yaml").read_text() == "replicas: 4\n"


async def test_two_clones_of_the_same_tree_give_the_same_digest(
    repo: GitRepo, git_http_server: GitHTTPServer, git_client: GitClient, tmp_path: Path
) -> None:
    url = git_http_server.url(repo)
    await git_client.fetch(url, checkout_for(None), tmp_path / "a")
    await git_client.fetch(url, checkout_for(None), tmp_path / "b")
    a = build_tarball(tmp_path / "a", tmp_path / "a.tar.gz")
    b = build_tarball(tmp_path / "b", tmp_path / "b.tar.gz")
    assert a.sha256 == b.sha256

    repo.commit({"README.md": "changed\n"})
    await git_client.fetch(url, checkout_for(None), tmp_path / "c")
    assert build_tarball(tmp_path / "c", tmp_path / "c.tar.gz").sha256 != a.sha256


async def test_modes_symlinks_and_exclusions_survive_the_checkout(
    git_repo: GitRepo, git_http_server: GitHTTPServer, git_client: GitClient, tmp_path: Path
) -> None:
    git_repo.commit(
        {
            "run.sh": File("#!/bin/sh\n", executable=True),
            "link.yaml": Symlink("/etc/passwd"),
            ".sourceignore": "docs/\n",
            "docs/a.md": "x",
            "app.yaml": "a: 1\n",
            ".github/workflows/ci.yaml": "on: push\n",
        }
    )
    await git_client.fetch(git_http_server.url(git_repo), checkout_for(None), tmp_path / "co")
    assert (tmp_path / "co/run.sh").stat().st_mode & 0o777 == 0o755
    assert not (tmp_path / "co/link.yaml").exists()
    art = build_tarball(tmp_path / "co", tmp_path / "a.tar.gz")
    import tarfile

    with tarfile.open(art.path) as tar:
        # .sourceignore replaces the default list, as in Flux: .github stays.
        assert tar.getnames() == [
            ".github/workflows/ci.yaml",
            ".sourceignore",
            "app.yaml",
            "run.sh",
        ]


async def test_sparse_checkout_writes_only_the_listed_directories(
    repo: GitRepo, git_http_server: GitHTTPServer, git_client: GitClient, tmp_path: Path
) -> None:
    result = await git_client.fetch(
        git_http_server.url(repo), checkout_for(None), tmp_path / "co", sparse_checkout=["./app"]
    )
    assert list(files(tmp_path / "co")) == ["app/deploy.yaml"]
    assert result.files == 1


async def test_basic_auth_fetches_with_the_right_password(
    repo: GitRepo, git_http_basic_server: GitHTTPServer, git_client: GitClient, tmp_path: Path
) -> None:
    s = git_http_basic_server
    auth = GitAuth.from_secret({"username": s.username, "password": s.password}, name="git-creds")
    result = await git_client.fetch(s.url(repo), checkout_for(None), tmp_path / "co", auth)
    assert result.resolved.revision.startswith("master@sha1:")


async def test_a_wrong_password_is_an_auth_error_that_never_shows_it(
    repo: GitRepo, git_http_basic_server: GitHTTPServer, git_client: GitClient
) -> None:
    s = git_http_basic_server
    auth = GitAuth(username=s.username, password="hunter2-wrong", secret_name="git-creds")
    with pytest.raises(
        GitAuthError, match=r"check 'username'/'password' in secret 'git-creds'"
    ) as info:
        await git_client.ls_remote(s.url(repo), auth)
    assert info.value.reason == "AuthenticationFailed"
    assert "hunter2" not in str(info.value)


async def test_missing_credentials_point_at_spec_secret_ref(
    repo: GitRepo, git_http_basic_server: GitHTTPServer, git_client: GitClient
) -> None:
    with pytest.raises(GitAuthError, match=r"requires authentication: set spec\.secretRef"):
        await git_client.ls_remote(git_http_basic_server.url(repo))


async def test_a_bearer_token_authenticates_and_a_wrong_one_does_not(
    repo: GitRepo, git_http_bearer_server: GitHTTPServer, git_client: GitClient, tmp_path: Path
) -> None:
    s = git_http_bearer_server
    good = GitAuth.from_secret({"bearerToken": s.token}, name="token")
    result = await git_client.fetch(s.url(repo), checkout_for(None), tmp_path / "co", good)
    assert result.files == 2
    with pytest.raises(GitAuthError, match=r"check 'bearerToken' in secret 'token'") as info:
        await git_client.ls_remote(
            s.url(repo), GitAuth(bearer_token="wrong-t0ken", secret_name="token")
        )
    assert "wrong-t0ken" not in str(info.value)


async def test_https_with_the_servers_ca_works_and_without_it_fails(
    repo: GitRepo, git_https_server: GitHTTPServer, git_client: GitClient, tmp_path: Path
) -> None:
    s = git_https_server
    auth = GitAuth.from_secret({"ca.crt": s.ca.ca_pem}, name="ca")
    assert (
        await git_client.fetch(s.url(repo), checkout_for(None), tmp_path / "co", auth)
    ).files == 2
    with pytest.raises(GitTLSError, match=r"not trusted: add its CA as 'ca\.crt'"):
        await git_client.ls_remote(s.url(repo))
    with pytest.raises(GitTLSError, match="not trusted"):
        await git_client.ls_remote(s.url(repo), GitAuth(ca_cert=s.ca.other_ca_pem))


async def test_mtls_needs_the_client_certificate(
    repo: GitRepo, git_https_mtls_server: GitHTTPServer, git_client: GitClient, tmp_path: Path
) -> None:
    s = git_https_mtls_server
    ca: TestCA = s.ca
    auth = GitAuth.from_secret(
        {"ca.crt": ca.ca_pem, "tls.crt": ca.client_cert_pem, "tls.key": ca.client_key_pem},
        name="mtls",
    )
    assert (
        await git_client.fetch(s.url(repo), checkout_for(None), tmp_path / "co", auth)
    ).files == 2
    with pytest.raises(
        GitTLSError, match=r"requires a TLS client certificate: set 'tls\.crt' and 'tls\.key'"
    ):
        await git_client.ls_remote(s.url(repo), GitAuth(ca_cert=ca.ca_pem, secret_name="mtls"))


async def test_an_unreachable_host_is_an_unreachable_error(
    repo: GitRepo, git_http_server: GitHTTPServer, git_client: GitClient
) -> None:
    url = git_http_server.url(repo)
    git_http_server.stop()
    with pytest.raises(GitUnreachableError, match=r"unable to reach .*Connection refused"):
        await git_client.ls_remote(url)


async def test_polling_recovers_when_the_server_comes_back(
    repo: GitRepo, git_http_server: GitHTTPServer, git_client: GitClient
) -> None:
    url = git_http_server.url(repo)
    await git_client.ls_remote(url)
    git_http_server.stop()
    with pytest.raises(GitUnreachableError):
        await git_client.ls_remote(url)
    git_http_server.start()
    assert "refs/heads/master" in await git_client.ls_remote(url)


async def test_a_repository_over_the_size_limit_is_refused(
    git_repo: GitRepo, git_http_server: GitHTTPServer, tmp_path: Path
) -> None:
    git_repo.commit({f"f{i}.bin": bytes(range(256)) * 64 * (i + 1) for i in range(8)})
    client = GitClient(timeout=20, size_limit=16 * 1024)
    try:
        with pytest.raises(GitSizeLimitError, match=r"larger than the size limit.*16384") as info:
            await client.fetch(git_http_server.url(git_repo), checkout_for(None), tmp_path / "co")
        assert info.value.reason == "SizeLimitExceeded"
        ok = await client.fetch(
            git_http_server.url(git_repo), checkout_for(None), tmp_path / "co2", size_limit=10**7
        )
        assert ok.files == 8
    finally:
        client.close()


async def test_a_slow_server_hits_the_timeout(git_client: GitClient) -> None:
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with pytest.raises(GitUnreachableError, match=r"timed out after 0\.5s|did not answer"):
            await git_client.ls_remote(f"http://127.0.0.1:{port}/repo.git", timeout=0.5)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("git@github.com:org/repo.git", id="scp-like"),
        pytest.param("file:///etc", id="file"),
    ],
)
async def test_bad_urls_never_touch_the_network(
    git_client: GitClient, url: str, tmp_path: Path
) -> None:
    with pytest.raises(InvalidURLError):
        await git_client.fetch(url, checkout_for(None), tmp_path / "co")
    assert not (tmp_path / "co").exists()


async def test_submodules_are_checked_out_when_asked(
    git_repo_factory, git_http_server: GitHTTPServer, git_client: GitClient, tmp_path: Path
) -> None:
    lib = git_repo_factory("lib")
    lib_sha = lib.commit({"lib.yaml": "lib: 1\n"})
    main = git_repo_factory("main")
    main.commit(
        {
            ".gitmodules": '[submodule "vendor/lib"]\n\tpath = vendor/lib\n\turl = ../lib.git\n',
            "app.yaml": "a\n",
        },
        gitlinks={"vendor/lib": lib_sha},
    )
    url = git_http_server.url(main)
    plain = await git_client.fetch(url, checkout_for(None), tmp_path / "plain")
    assert not (plain.path / "vendor/lib/lib.yaml").exists()
    deep = await git_client.fetch(
        url, checkout_for(None), tmp_path / "deep", recurse_submodules=True
    )
    assert (deep.path / "vendor/lib/lib.yaml").read_text() == "lib: 1\n"


async def test_a_bare_commit_is_found_on_servers_that_refuse_unadvertised_ids(
    repo: GitRepo, git_http_server_factory, git_client: GitClient, tmp_path: Path
) -> None:
    # dulwich's own server speaks protocol v0 only and rejects wants that are not ref tips.
    v0_only = git_http_server_factory(backend="dulwich")
    old = first(repo)
    result = await git_client.fetch(
        v0_only.url(repo), checkout_for(RefSpec(commit=old)), tmp_path / "co"
    )
    assert result.resolved.revision == f"sha1:{old}"
    assert (tmp_path / "co/app/deploy.yaml").read_text() == "replicas: 1\n"


async def test_a_directory_can_be_committed_as_a_whole_tree(
    git_repo: GitRepo, git_http_server: GitHTTPServer, git_client: GitClient, tmp_path: Path
) -> None:
    src = tmp_path / "examples"
    (src / "base").mkdir(parents=True)
    (src / "base/kustomization.yaml").write_text("resources: []\n")
    git_repo.commit({"stale.yaml": "x"})
    git_repo.commit_directory(src)
    await git_client.fetch(git_http_server.url(git_repo), checkout_for(None), tmp_path / "co")
    assert files(tmp_path / "co") == {"base/kustomization.yaml": "resources: []\n"}


async def test_a_highly_compressible_blob_is_refused_before_it_is_inflated(
    git_repo: GitRepo, git_http_server: GitHTTPServer, tmp_path: Path
) -> None:
    git_repo.commit({"zeros.bin": bytes(8 * 1024 * 1024), "small.yaml": "a: 1\n"})
    client = GitClient(timeout=20, size_limit=1024 * 1024)
    try:
        with pytest.raises(GitSizeLimitError, match="unpacked objects exceeded 1048576 bytes"):
            await client.fetch(git_http_server.url(git_repo), checkout_for(None), tmp_path / "co")
    finally:
        client.close()


async def test_a_password_without_a_username_is_a_credentials_error(
    repo: GitRepo, git_http_basic_server: GitHTTPServer, git_client: GitClient
) -> None:
    with pytest.raises(
        GitCredentialsError, match=r"secret 'creds': 'password' requires 'username'"
    ):
        await git_client.ls_remote(
            git_http_basic_server.url(repo), GitAuth(password="pw", secret_name="creds")
        )
    assert git_http_basic_server.requests == 0


@pytest.mark.parametrize(
    "ref",
    [
        pytest.param(RefSpec(branch="main"), id="branch"),
        pytest.param(RefSpec(tag="v1.0.0"), id="annotated-tag"),
        pytest.param(RefSpec(semver="1.x"), id="semver"),
        pytest.param(RefSpec(name="refs/pull/1/head"), id="name"),
        pytest.param(RefSpec(branch="gone"), id="missing-branch"),
    ],
)
async def test_protocol_v2_listings_ask_for_less_and_resolve_like_v0(
    repo: GitRepo, git_http_server: GitHTTPServer, ref: RefSpec
) -> None:
    url, checkout = git_http_server.url(repo), checkout_for(ref)
    v0, v2 = GitClient(timeout=20), GitClient(timeout=20, list_protocol=2)
    try:
        outcomes = []
        for client in (v0, v2):
            try:
                outcomes.append((await client.resolve(url, checkout)).revision)
            except GitNotFoundError as e:
                outcomes.append(str(e))
        assert outcomes[0] == outcomes[1]
    finally:
        v0.close()
        v2.close()
