"""The source builds within the same `ArtifactLimits` the kustomize service extracts
within: an artifact at a limit is built and rendered, one over it is refused by both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fluxbus_common.artifact import ArtifactLimits
from fluxbus_kustomize.build import ArtifactRefusedError, Builder, BuildLimits, BuildSpec
from fluxbus_source.artifact import build_tarball
from fluxbus_source.errors import ArchiveError

Artifact = Callable[..., tuple[Path, str]]


def configmap(name: str, padding: int = 0) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\n" + "#" * padding


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def builder_with(limits: ArtifactLimits, tmp_path: Path) -> Builder:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return Builder(limits=BuildLimits(artifact=limits), temp_dir=work)


async def test_an_artifact_at_the_member_limit_is_built_and_rendered(tmp_path: Path) -> None:
    limits = ArtifactLimits(max_members=3)
    tree = write_tree(tmp_path / "tree", {f"cm{i}.yaml": configmap(f"cm{i}") for i in range(3)})
    art = build_tarball(tree, tmp_path / "a.tar.gz", limits=limits)
    objects = await builder_with(limits, tmp_path).build(art.path, art.digest, BuildSpec())
    assert sorted(o["metadata"]["name"] for o in objects) == ["cm0", "cm1", "cm2"]


async def test_an_artifact_over_the_member_limit_is_refused_by_both_sides(
    tmp_path: Path, artifact: Artifact
) -> None:
    limits = ArtifactLimits(max_members=3)
    files = {f"cm{i}.yaml": configmap(f"cm{i}") for i in range(4)}
    tree = write_tree(tmp_path / "tree", files)
    with pytest.raises(ArchiveError, match=r"more than 3 members \(file count limit\)") as built:
        build_tarball(tree, tmp_path / "a.tar.gz", limits=limits)
    assert built.value.reason == "ArchiveOperationFailed"
    assert not (tmp_path / "a.tar.gz").exists()
    # what a source without the limit would have published
    tar, digest = artifact(files)
    with pytest.raises(ArtifactRefusedError, match=r"more than 3 members \(file count limit\)"):
        await builder_with(limits, tmp_path).build(tar, digest, BuildSpec())


async def test_the_size_limit_is_the_same_on_both_sides(tmp_path: Path, artifact: Artifact) -> None:
    files = {"a.yaml": configmap("a", 100), "b.yaml": configmap("b", 100)}
    limit = sum(len(text) for text in files.values())
    at_limit = ArtifactLimits(max_total_bytes=limit)
    tree = write_tree(tmp_path / "tree", files)
    art = build_tarball(tree, tmp_path / "a.tar.gz", limits=at_limit)
    assert len(await builder_with(at_limit, tmp_path).build(art.path, art.digest, BuildSpec())) == 2

    over = ArtifactLimits(max_total_bytes=limit - 1)
    message = rf"'b\.yaml' exceeds the size limit of {limit - 1} bytes"
    with pytest.raises(ArchiveError, match=message):
        build_tarball(tree, tmp_path / "b.tar.gz", limits=over)
    tar, digest = artifact(files)
    with pytest.raises(ArtifactRefusedError, match=message):
        await builder_with(over, tmp_path).build(tar, digest, BuildSpec())


def test_both_sides_default_to_the_limits_of_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert BuildLimits().artifact == ArtifactLimits() == ArtifactLimits.from_env({})
    monkeypatch.setenv("FLUXBUS_ARTIFACT_MAX_MEMBERS", "7")
    monkeypatch.setenv("FLUXBUS_ARTIFACT_MAX_BYTES", "4096")
    assert BuildLimits().artifact == ArtifactLimits(max_members=7, max_total_bytes=4096)
