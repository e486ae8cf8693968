"""Signed commits: an OpenPGP `gpgsig` header that the real `git verify-commit` accepts."""

import base64
from pathlib import Path

import pytest

from fluxbus_git.errors import GitSigningError
from fluxbus_git.logic.auth import GitAuth
from fluxbus_git.logic.refs import RefSpec, checkout_for
from fluxbus_git.results import CommitAuthor, SigningKey
from fluxbus_git.signing import check_signing_key
from fluxbus_git.testing import GitHTTPServer, GitRepo, GPGKeys
from fluxbus_git.writer import GitWriter

BOT = CommitAuthor("Flux Bot", "flux-bot@fluxbus.invalid")
MAIN = checkout_for(RefSpec(branch="main"))


@pytest.fixture
async def clone(
    app_repo: GitRepo, git_http_basic_server: GitHTTPServer, git_writer: GitWriter, tmp_path: Path
) -> Path:
    """A clone of `app_repo`'s main with one edited file."""
    s = git_http_basic_server
    dest = tmp_path / "clone"
    await git_writer.clone(s.url(app_repo), MAIN, dest, GitAuth(s.username, s.password))
    (dest / "app/deploy.yaml").write_text("image: ghcr.io/acme/app:1.0.1\n")
    return dest


async def push(writer: GitWriter, clone: Path, server: GitHTTPServer, repo: GitRepo) -> None:
    auth = GitAuth(server.username, server.password)
    await writer.push(clone, server.url(repo), ["HEAD:refs/heads/main"], auth)


@pytest.mark.parametrize(
    "which",
    [pytest.param("plain", id="no-passphrase"), pytest.param("protected", id="with-passphrase")],
)
async def test_a_signed_commit_verifies_with_git_verify_commit(
    app_repo: GitRepo,
    git_http_basic_server: GitHTTPServer,
    git_writer: GitWriter,
    gpg_keys: GPGKeys,
    clone: Path,
    which: str,
) -> None:
    key = getattr(gpg_keys, which)
    signing = SigningKey.from_secret(
        {"git.asc": key.armored} | ({"passphrase": key.passphrase} if key.passphrase else {}),
        name="signing",
    )
    sha = await git_writer.commit(clone, "Signed update\n\nbody line", BOT, signing_key=signing)
    assert sha is not None
    await push(git_writer, clone, git_http_basic_server, app_repo)
    [info] = app_repo.log("main")
    assert info.signed
    assert info.message == "Signed update\n\nbody line\n"
    ok, output = app_repo.verify_commit(sha, gpg_keys.verify_home)
    assert ok, output
    assert f'Good signature from "{key.name} <{key.email}>"' in output
    app_repo.fsck()


async def test_a_commit_is_not_verified_with_an_unknown_key(
    app_repo: GitRepo, git_writer: GitWriter, gpg_keys: GPGKeys, clone: Path, tmp_path: Path
) -> None:
    other = GPGKeys.create(tmp_path / "other-gpg")
    try:
        signing = SigningKey(other.plain.armored)
        sha = await git_writer.commit(clone, "signed elsewhere", BOT, signing_key=signing)
        assert sha is not None
        ok, _ = GitRepo(clone / ".git").verify_commit(sha, gpg_keys.verify_home)
        assert not ok
        ok, output = GitRepo(clone / ".git").verify_commit(sha, other.verify_home)
        assert ok, output
    finally:
        other.close()


@pytest.mark.parametrize(
    ("armored_of", "passphrase", "message"),
    [
        pytest.param("protected", None, "without 'passphrase' field", id="missing-passphrase"),
        pytest.param(
            "protected", "not the passphrase", "check 'passphrase'", id="wrong-passphrase"
        ),
        pytest.param("garbage", None, "not an armored key", id="bad-armor"),
        pytest.param("both", None, "multiple keys", id="two-keys"),
        pytest.param("public", None, "no usable secret signing key", id="public-key"),
    ],
)
async def test_an_unusable_signing_key_is_a_signing_error_and_commits_nothing(
    git_writer: GitWriter,
    gpg_keys: GPGKeys,
    clone: Path,
    armored_of: str,
    passphrase: str | None,
    message: str,
) -> None:
    armored = {
        "protected": gpg_keys.protected.armored,
        "garbage": b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nnot a key\n",
        "both": gpg_keys.plain.armored + gpg_keys.protected.armored,
        "public": gpg_keys.public(gpg_keys.plain),
    }[armored_of]
    key = SigningKey(armored, passphrase, secret_name="signing")
    head = (clone / ".git/refs/heads/main").read_text()
    with pytest.raises(GitSigningError, match=message) as err:
        await git_writer.commit(clone, "never", BOT, signing_key=key)
    assert "signing key secret 'signing'" in str(err.value)
    assert "PRIVATE KEY" not in str(err.value)
    if passphrase:
        assert passphrase not in str(err.value)
    assert (clone / ".git/refs/heads/main").read_text() == head
    with pytest.raises(GitSigningError):
        check_signing_key(key)


@pytest.mark.parametrize(
    ("data", "encoded", "expected"),
    [
        pytest.param({"git.asc": "KEY"}, False, (b"KEY", None), id="plain"),
        pytest.param(
            {"git.asc": "KEY", "passphrase": "pw"}, False, (b"KEY", "pw"), id="with-passphrase"
        ),
        pytest.param(
            {"git.asc": base64.b64encode(b"KEY").decode(), "passphrase": "cHc="},
            True,
            (b"KEY", "pw"),
            id="base64-data",
        ),
    ],
)
def test_a_signing_key_is_read_from_fluxs_secret_keys(
    data: dict[str, str], encoded: bool, expected: tuple[bytes, str | None]
) -> None:
    key = SigningKey.from_secret(data, name="signing", encoded=encoded)
    assert (key.armored, key.passphrase) == expected
    assert "KEY" not in repr(key) and "pw" not in repr(key)


@pytest.mark.parametrize(
    ("data", "encoded", "message"),
    [
        pytest.param({"identity": "x"}, False, "does not contain a 'git.asc' key", id="no-key"),
        pytest.param({"git.asc": "%%%"}, True, "'git.asc' is not valid base64", id="bad-base64"),
    ],
)
def test_a_signing_secret_without_a_usable_key_is_refused(
    data: dict[str, str], encoded: bool, message: str
) -> None:
    with pytest.raises(GitSigningError, match=message):
        SigningKey.from_secret(data, name="signing", encoded=encoded)
