"""The Git half of a GitRepository reconcile: poll, rebuild decision, build with includes."""

import tarfile
from pathlib import Path

from fluxbus_common.api.source import GitRepositoryRef, GitRepositorySpec
from fluxbus_common.testing.git import GitHTTPServer, GitRepo
from fluxbus_source.artifact import build_tarball
from fluxbus_source.fetcher import IncludedArtifact, SourceBuilder, SourceRequest
from fluxbus_source.git import GitClient
from fluxbus_source.logic.plan import rebuild_reason


async def test_a_spec_builds_an_artifact_and_an_unchanged_remote_needs_no_rebuild(
    git_repo: GitRepo, git_http_server: GitHTTPServer, git_client: GitClient, tmp_path: Path
) -> None:
    sha = git_repo.commit(
        {"deploy/app.yaml": "a: 1\n", "logo.png": "x"}, branch="main", message="add app"
    )
    spec = GitRepositorySpec(
        url=git_http_server.url(git_repo),
        interval="1m",
        timeout="20s",
        ref=GitRepositoryRef(branch="main"),
    )
    request = SourceRequest.from_spec(spec)
    work = tmp_path / "work"
    work.mkdir()
    builder = SourceBuilder(git_client, work)

    built = await builder.build(request, tmp_path / "a.tar.gz")
    assert built.revision == f"main@sha1:{sha}" and built.message == "add app"
    assert built.files == 1 and built.digest.startswith("sha256:")
    assert leftovers(work) == []  # the checkout is gone

    git_http_server.reset_counters()
    resolved = await builder.check(request)
    assert (
        rebuild_reason(remote_revision=resolved.revision, artifact_revision=built.revision) is None
    )
    assert git_http_server.fetches == 0

    new = git_repo.commit({"deploy/app.yaml": "a: 2\n"}, branch="main")
    resolved = await builder.check(request)
    assert rebuild_reason(remote_revision=resolved.revision, artifact_revision=built.revision) == (
        f"new revision 'main@sha1:{new}' (stored 'main@sha1:{sha}')"
    )


async def test_included_artifacts_are_mapped_into_the_archive(
    git_repo: GitRepo, git_http_server: GitHTTPServer, git_client: GitClient, tmp_path: Path
) -> None:
    git_repo.commit({"kustomization.yaml": "resources: [base/app]\n"})
    other = write(
        tmp_path / "other", {"deploy/kubernetes/app.yaml": "kind: Deployment\n", "src/x": "x"}
    )
    other_art = build_tarball(other, tmp_path / "other.tar.gz")
    request = SourceRequest(url=git_http_server.url(git_repo))

    built = await SourceBuilder(git_client).build(
        request,
        tmp_path / "out.tar.gz",
        [IncludedArtifact(other_art.path, to_path="base/app", from_path="deploy/kubernetes")],
    )
    with tarfile.open(built.path) as tar:
        assert tar.getnames() == ["base/app/app.yaml", "kustomization.yaml"]


def leftovers(directory: Path) -> list[Path]:
    return list(directory.iterdir())


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_a_changed_shape_of_the_artifact_forces_a_rebuild() -> None:
    rev = "main@sha1:" + "a" * 40
    same = {"remote_revision": rev, "artifact_revision": rev}
    assert rebuild_reason(remote_revision=rev, artifact_revision=None) == "no artifact"
    assert rebuild_reason(**same, artifact_in_storage=False) == "artifact missing from storage"
    assert rebuild_reason(**same, ignore="*.md") == "spec.ignore changed"
    assert rebuild_reason(**same, sparse_checkout=["apps"]) == "spec.sparseCheckout changed"
    assert rebuild_reason(**same, recurse_submodules=True) == "spec.recurseSubmodules changed"
    assert rebuild_reason(**same, include_revisions=["x"]) == "included artifacts changed"
    assert rebuild_reason(remote_revision=rev, artifact_revision="main/" + "a" * 40) is None
