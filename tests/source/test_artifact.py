"""Artifacts are deterministic tar.gz files of the checked-out tree, minus exclusions."""

import gzip
import os
import tarfile
from pathlib import Path

import pytest

from fluxbus_git.errors import InvalidSpecError
from fluxbus_source.artifact import (
    archive,
    build_tarball,
    copy_include,
    extract_tarball,
    file_sha256,
    include_artifact,
)
from fluxbus_source.errors import ArchiveError


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return {m.name: m for m in tar.getmembers()}


TREE = {
    "kustomization.yaml": "resources: [app]\n",
    "app/deployment.yaml": "kind: Deployment\n",
    "app/run.sh": "#!/bin/sh\n",
    "logo.png": "binary",
    ".github/workflows/ci.yaml": "on: push\n",
    ".git/config": "[core]\n",
}


def test_the_same_tree_always_gives_the_same_digest(tmp_path: Path) -> None:
    one = write_tree(tmp_path / "one", TREE)
    two = write_tree(tmp_path / "two", dict(reversed(list(TREE.items()))))
    os.utime(two / "app/deployment.yaml", (1, 1))
    os.chmod(one / "app/deployment.yaml", 0o664)  # group-writable still normalises to 0644
    a = build_tarball(one, tmp_path / "a.tar.gz")
    b = build_tarball(two, tmp_path / "b.tar.gz")
    assert a.sha256 == b.sha256 == file_sha256(a.path)
    assert a.size == b.size == a.path.stat().st_size
    assert a.digest == f"sha256:{a.sha256}"


def test_a_changed_file_changes_the_digest(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", TREE)
    before = build_tarball(src, tmp_path / "a.tar.gz")
    (src / "app/deployment.yaml").write_text("kind: StatefulSet\n")
    assert build_tarball(src, tmp_path / "b.tar.gz").sha256 != before.sha256


def test_entries_are_sorted_files_with_normalised_headers(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", TREE)
    os.chmod(src / "app/run.sh", 0o700)
    art = build_tarball(src, tmp_path / "a.tar.gz")
    entries = members(art.path)
    assert list(entries) == ["app/deployment.yaml", "app/run.sh", "kustomization.yaml"]
    assert art.files == 3
    for m in entries.values():
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
        assert m.isfile()
    assert entries["app/run.sh"].mode == 0o755
    assert entries["app/deployment.yaml"].mode == 0o644
    header = art.path.read_bytes()[:10]
    assert header[4:8] == b"\0\0\0\0"  # gzip mtime 0
    assert not header[3] & 0x08  # no FNAME flag: no file name stored


def test_symlinks_and_special_files_are_left_out(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"a.yaml": "a: 1\n"})
    (src / "link.yaml").symlink_to(src / "a.yaml")
    (src / "dirlink").symlink_to(src)
    os.mkfifo(src / "pipe")
    assert list(members(build_tarball(src, tmp_path / "a.tar.gz").path)) == ["a.yaml"]


def test_sourceignore_files_apply_at_any_depth(tmp_path: Path) -> None:
    src = write_tree(
        tmp_path / "src",
        {
            ".sourceignore": "*.md\n",
            "README.md": "x",
            "apps/.sourceignore": "secret.yaml\n",
            "apps/secret.yaml": "x",
            "apps/app.yaml": "x",
            "secret.yaml": "kept: the apps/ rule does not reach the root\n",
        },
    )
    names = list(members(build_tarball(src, tmp_path / "a.tar.gz").path))
    assert names == [".sourceignore", "apps/.sourceignore", "apps/app.yaml", "secret.yaml"]


def test_spec_ignore_replaces_the_defaults(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", TREE)
    names = list(members(build_tarball(src, tmp_path / "a.tar.gz", spec_ignore="*.sh\n").path))
    assert names == [
        ".github/workflows/ci.yaml",
        "app/deployment.yaml",
        "kustomization.yaml",
        "logo.png",
    ]


async def test_archiving_runs_off_the_event_loop(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", TREE)
    art = await archive(src, tmp_path / "a.tar.gz")
    assert art.files == 3


def test_an_artifact_unpacks_to_the_same_files(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", TREE)
    art = build_tarball(src, tmp_path / "a.tar.gz")
    assert extract_tarball(art.path, tmp_path / "out") == 3
    assert (tmp_path / "out/app/deployment.yaml").read_text() == "kind: Deployment\n"
    again = build_tarball(tmp_path / "out", tmp_path / "b.tar.gz")
    assert again.sha256 == art.sha256


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        pytest.param("../evil", tarfile.REGTYPE, id="dotdot"),
        pytest.param("/etc/evil", tarfile.REGTYPE, id="absolute"),
        pytest.param("link", tarfile.SYMTYPE, id="symlink"),
    ],
)
def test_unpacking_refuses_entries_that_escape_or_link(
    tmp_path: Path, name: str, kind: bytes
) -> None:
    bad = tmp_path / "bad.tar.gz"
    with gzip.open(bad, "wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
        tar.addfile(info)
    with pytest.raises(ArchiveError, match="refused"):
        extract_tarball(bad, tmp_path / "out")
    assert not (tmp_path / "evil").exists()


def test_include_copies_from_path_into_to_path(tmp_path: Path) -> None:
    other = write_tree(
        tmp_path / "other",
        {"deploy/kubernetes/a.yaml": "a\n", "deploy/kubernetes/sub/b.yaml": "b\n", "src/x.go": "x"},
    )
    dest = write_tree(
        tmp_path / "dest", {"base/app/old.yaml": "old\n", "base/app/a.yaml": "stale\n"}
    )
    assert copy_include(other, dest, "deploy/kubernetes", "base/app") == 2
    assert (dest / "base/app/a.yaml").read_text() == "a\n"
    assert (dest / "base/app/sub/b.yaml").read_text() == "b\n"
    assert (dest / "base/app/old.yaml").exists()
    assert not (dest / "base/app/x.go").exists()


async def test_include_without_from_path_copies_the_whole_artifact(tmp_path: Path) -> None:
    other = write_tree(tmp_path / "other", {"a.yaml": "a\n", "d/b.yaml": "b\n"})
    art = build_tarball(other, tmp_path / "other.tar.gz")
    dest = tmp_path / "dest"
    dest.mkdir()
    assert await include_artifact(art.path, dest, None, "other-repository") == 2
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*.yaml")) == [
        "other-repository/a.yaml",
        "other-repository/d/b.yaml",
    ]


@pytest.mark.parametrize(
    ("from_path", "to_path"),
    [
        pytest.param("../outside", "x", id="from-escapes"),
        pytest.param(None, "../../etc", id="to-escapes"),
        pytest.param("/etc", "x", id="from-absolute"),
    ],
)
def test_include_paths_cannot_leave_their_roots(
    tmp_path: Path, from_path: str | None, to_path: str
) -> None:
    other = write_tree(tmp_path / "other", {"a.yaml": "a\n"})
    with pytest.raises(InvalidSpecError, match=r"spec\.include\."):
        copy_include(other, tmp_path / "dest", from_path, to_path)


def test_include_never_writes_through_a_symlink_in_the_destination(tmp_path: Path) -> None:
    other = write_tree(tmp_path / "other", {"a.yaml": "a\n"})
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "base").symlink_to(outside)
    with pytest.raises(ArchiveError, match="symlink"):
        copy_include(other, dest, None, "base/app")
    assert not any(outside.iterdir())


def test_include_of_a_missing_from_path_is_an_error(tmp_path: Path) -> None:
    other = write_tree(tmp_path / "other", {"a.yaml": "a\n"})
    with pytest.raises(ArchiveError, match="fromPath: 'nope' not found"):
        copy_include(other, tmp_path / "dest", "nope", "x")
