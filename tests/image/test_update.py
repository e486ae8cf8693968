"""Walking a work tree applies the setters to the YAML files Flux would consider, writes only the
changed ones, never follows a symbolic link nor leaves the tree, and reports what it skipped."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from fluxbus_common.api.image import ImageRef
from fluxbus_image.logic.setters import ObjectId
from fluxbus_image.update import MAX_FILE_BYTES, update_tree

POLICIES = {"automation-ns:policy": ImageRef(name="index.repo.fake/updated", tag="v1.0.1")}
MARKED = b'image: image:v1.0.0 # {"$imagepolicy": "automation-ns:policy"}\n'
UPDATED = b'image: index.repo.fake/updated:v1.0.1 # {"$imagepolicy": "automation-ns:policy"}\n'
TAGGED = b'newTag: v1 # {"$imagepolicy": "automation-ns:policy:tag"}\n'


def write(root: Path, rel: str, content: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_yaml_yml_and_kustomization_files_are_updated_and_others_left_alone(
    tmp_path: Path,
) -> None:
    write(tmp_path, "apps/deploy.yaml", MARKED)
    write(tmp_path, "apps/kustomization.yml", TAGGED)
    write(tmp_path, "apps/Kustomization", TAGGED)
    write(tmp_path, "apps/notes.txt", MARKED)
    write(tmp_path, "apps/chart/templates/t.yaml", b'a: b\n{{- if "$imagepolicy" }}\n')
    write(tmp_path, "apps/unmarked.yaml", b"image: image:v1.0.0\n")
    write(tmp_path, ".git/config.yaml", MARKED)

    result = update_tree(tmp_path, None, POLICIES)

    assert sorted(result.files) == [
        "apps/Kustomization",
        "apps/deploy.yaml",
        "apps/kustomization.yml",
    ]
    assert (tmp_path / "apps/deploy.yaml").read_bytes() == UPDATED
    assert (tmp_path / "apps/Kustomization").read_bytes() == TAGGED.replace(b"v1 ", b"v1.0.1 ")
    assert (tmp_path / "apps/notes.txt").read_bytes() == MARKED
    assert (tmp_path / ".git/config.yaml").read_bytes() == MARKED
    assert result.skipped["apps/chart/templates/t.yaml"].startswith(
        "apps/chart/templates/t.yaml:3: could not find expected ':'"
    )
    assert list(result.skipped) == ["apps/chart/templates/t.yaml"]
    [change] = result.files["apps/deploy.yaml"]
    assert (change.file, change.setter, change.object) == (
        "apps/deploy.yaml",
        "automation-ns:policy",
        ObjectId(),
    )
    assert len(result.changes) == 3


def test_the_update_path_limits_the_walk(tmp_path: Path) -> None:
    write(tmp_path, "clusters/prod/app.yaml", MARKED)
    write(tmp_path, "clusters/staging/app.yaml", MARKED)

    result = update_tree(tmp_path, "./clusters/prod/", POLICIES)

    assert list(result.files) == ["clusters/prod/app.yaml"]
    assert (tmp_path / "clusters/staging/app.yaml").read_bytes() == MARKED


def test_a_changed_file_keeps_its_mode_and_an_unchanged_one_is_not_rewritten(
    tmp_path: Path,
) -> None:
    script = write(tmp_path, "run.yaml", MARKED)
    script.chmod(0o750)
    same = write(tmp_path, "same.yaml", UPDATED)
    os.utime(same, (1_000_000, 1_000_000))

    update_tree(tmp_path, "", POLICIES)

    assert stat.S_IMODE(script.stat().st_mode) == 0o750
    assert script.read_bytes() == UPDATED
    assert same.stat().st_mtime == 1_000_000


def test_symbolic_links_are_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    target = write(outside, "secret.yaml", MARKED)
    tree = tmp_path / "tree"
    write(tree, "real.yaml", MARKED)
    (tree / "link.yaml").symlink_to(target)
    (tree / "linkdir").symlink_to(outside, target_is_directory=True)
    (tree / "broken.yaml").symlink_to(tree / "missing.yaml")

    result = update_tree(tree, None, POLICIES)

    assert list(result.files) == ["real.yaml"]
    assert target.read_bytes() == MARKED
    with pytest.raises(
        ValueError, match=re.escape("spec.update.path: 'linkdir' goes through a symbolic link")
    ):
        update_tree(tree, "linkdir", POLICIES)


@pytest.mark.parametrize(
    ("sub_path", "message"),
    [
        pytest.param(
            "../outside", "spec.update.path: '../outside' must not contain '..'", id="climbs"
        ),
        pytest.param("/etc", "spec.update.path: '/etc' must be a relative path", id="absolute"),
        pytest.param("missing", "spec.update.path: 'missing' does not exist", id="missing"),
        pytest.param("file.yaml", "spec.update.path: 'file.yaml' is not a directory", id="file"),
    ],
)
def test_an_update_path_outside_the_tree_is_refused(
    tmp_path: Path, sub_path: str, message: str
) -> None:
    write(tmp_path, "file.yaml", MARKED)
    with pytest.raises(ValueError, match=re.escape(message)):
        update_tree(tmp_path, sub_path, POLICIES)


def test_unparsable_and_oversize_marked_files_are_skipped_with_a_reason(tmp_path: Path) -> None:
    write(tmp_path, "a/bad.yaml", MARKED + b"x: [unclosed\n")
    big = write(tmp_path, "b/big.yaml", MARKED)
    with big.open("ab") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    write(tmp_path, "c/good.yaml", MARKED)

    result = update_tree(tmp_path, None, POLICIES)

    assert list(result.files) == ["c/good.yaml"]
    assert result.skipped["a/bad.yaml"].startswith("a/bad.yaml:3: ")
    assert result.skipped["b/big.yaml"] == f"file larger than {MAX_FILE_BYTES} bytes"
    assert (tmp_path / "a/bad.yaml").read_bytes() == MARKED + b"x: [unclosed\n"
