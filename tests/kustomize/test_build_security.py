"""Malicious repositories and artifacts: every escape from the artifact root,
every unsafe tar member and every plugin is refused with a message naming it."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from fluxbus_common.artifact import ArtifactLimits
from fluxbus_kustomize.build import (
    ArtifactRefusedError,
    Builder,
    BuildError,
    BuildLimits,
    BuildSpec,
    RenderCache,
)

Artifact = Callable[..., tuple[Path, str]]

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"


def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", link: str = ""):
    def add(tf: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = link
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        tf.addfile(info, io.BytesIO(data) if data else None)

    return add


@pytest.mark.parametrize(
    ("kustomization", "message"),
    [
        pytest.param(
            "resources: [../../../etc/passwd]\n",
            "kustomization.yaml: resources[0]: '../../../etc/passwd' points outside the artifact root",
            id="resource-outside-root",
        ),
        pytest.param(
            "resources: [/etc/passwd]\n",
            "resources[0]: '/etc/passwd' points outside the artifact root",
            id="absolute-resource",
        ),
        pytest.param(
            "resources: ['github.com/evil/repo//deploy?ref=main']\n",
            "resources[0]: 'github.com/evil/repo//deploy?ref=main' is a remote reference",
            id="remote-base",
        ),
        pytest.param(
            "resources: ['https://example.com/all.yaml']\n",
            "resources[0]: 'https://example.com/all.yaml' is a remote reference",
            id="url-resource",
        ),
        pytest.param(
            "resources: [cm.yaml]\npatches:\n  - path: ../../outside.yaml\n",
            "patches[0].path: '../../outside.yaml' points outside the artifact root",
            id="patch-outside-root",
        ),
        pytest.param(
            "resources: [cm.yaml]\nconfigMapGenerator:\n  - name: x\n    files: [key=../../../root/.ssh/id_rsa]\n",
            "configMapGenerator[0].files[0]: '../../../root/.ssh/id_rsa' points outside",
            id="generator-file-outside-root",
        ),
        pytest.param(
            "helmCharts:\n  - name: x\n    repo: https://charts.example.com\n",
            "helmCharts: Helm chart inflation is not allowed",
            id="helm-chart",
        ),
        pytest.param(
            "resources: [cm.yaml]\ntransformers: [plugin.yaml]\n",
            "plugin.yaml: document 0: someteam.example.com/v1/Exec is not a builtin kustomize plugin",
            id="exec-plugin",
        ),
        pytest.param(
            "resources: [cm.yaml]\ngenerators: [function.yaml]\n",
            "function.yaml: document 0: FnConfig: KRM function plugins (config.kubernetes.io/function)",
            id="krm-function",
        ),
        pytest.param(
            "resources: [cm.yaml]\ntransformers: [builtin-patch.yaml]\n",
            "builtin-patch.yaml: document 0: path: '../../secret.yaml' points outside",
            id="builtin-plugin-reading-outside-root",
        ),
    ],
)
async def test_a_kustomization_reaching_outside_the_sandbox_is_refused(
    artifact: Artifact, builder: Builder, kustomization: str, message: str
) -> None:
    tar, digest = artifact(
        {
            "app/kustomization.yaml": kustomization,
            "app/cm.yaml": CM,
            "app/plugin.yaml": "apiVersion: someteam.example.com/v1\nkind: Exec\nmetadata: {name: x}\n",
            "app/function.yaml": """\
                apiVersion: example.com/v1
                kind: FnConfig
                metadata:
                  name: x
                  annotations:
                    config.kubernetes.io/function: |
                      exec:
                        path: /bin/sh
                """,
            "app/builtin-patch.yaml": """\
                apiVersion: builtin
                kind: PatchTransformer
                metadata: {name: x}
                path: ../../secret.yaml
                """,
        }
    )
    with pytest.raises(BuildError) as info:
        await builder.build(tar, digest, BuildSpec(path="app"))
    assert message in str(info.value)
    assert builder.renders == 0, "kustomize never runs on a refused repository"


async def test_every_kustomization_of_the_overlay_chain_is_checked(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact(
        {
            "overlays/prod/kustomization.yaml": "resources: [../../base]\n",
            "base/kustomization.yaml": "resources: [cm.yaml, ../../etc/shadow]\n",
            "base/cm.yaml": CM,
        }
    )
    with pytest.raises(
        BuildError, match=r"base/kustomization\.yaml: resources\[1\]: '\.\./\.\./etc/shadow'"
    ):
        await builder.build(tar, digest, BuildSpec(path="overlays/prod"))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(
            member("app/passwd.yaml", tarfile.SYMTYPE, link="/etc/passwd"),
            "member 'app/passwd.yaml' is a link to '/etc/passwd'",
            id="symlink",
        ),
        pytest.param(
            member("app/hard.yaml", tarfile.LNKTYPE, link="app/kustomization.yaml"),
            "member 'app/hard.yaml' is a link",
            id="hardlink",
        ),
        pytest.param(
            member("../escaped.yaml", data=b"x"),
            "member '../escaped.yaml' points outside the artifact root",
            id="dot-dot-member",
        ),
        pytest.param(
            member("app/../../escaped.yaml", data=b"x"),
            "points outside the artifact root",
            id="nested-dot-dot-member",
        ),
        pytest.param(
            member("/tmp/absolute.yaml", data=b"x"),
            "member '/tmp/absolute.yaml' has an absolute path",
            id="absolute-member",
        ),
        pytest.param(
            member("app/dev", tarfile.CHRTYPE),
            "member 'app/dev' is not a regular file or directory",
            id="device",
        ),
        pytest.param(
            member("app/fifo", tarfile.FIFOTYPE),
            "member 'app/fifo' is not a regular file or directory",
            id="fifo",
        ),
    ],
)
async def test_an_unsafe_tar_member_rejects_the_artifact(
    artifact: Artifact, builder: Builder, tmp_path: Path, extra, message: str
) -> None:
    tar, digest = artifact({"app/kustomization.yaml": "resources: []\n"}, extra=extra)
    with pytest.raises(ArtifactRefusedError, match="artifact") as info:
        await builder.build(tar, digest, BuildSpec(path="app"))
    assert message in str(info.value)
    assert info.value.reason == "ArtifactFailed"
    assert not (tmp_path.parent / "escaped.yaml").exists()


async def test_a_file_beyond_the_size_limit_rejects_the_artifact(
    artifact: Artifact, tmp_path: Path
) -> None:
    builder = Builder(
        cache=RenderCache(), limits=BuildLimits(artifact=ArtifactLimits(max_total_bytes=4096))
    )
    tar, digest = artifact({"app/cm.yaml": CM, "app/huge.yaml": "#" * 10_000})
    with pytest.raises(
        ArtifactRefusedError, match=r"'app/huge\.yaml' exceeds the size limit of 4096 bytes"
    ):
        await builder.build(tar, digest, BuildSpec(path="app"))


async def test_too_many_files_reject_the_artifact(artifact: Artifact) -> None:
    builder = Builder(
        cache=RenderCache(), limits=BuildLimits(artifact=ArtifactLimits(max_members=3))
    )
    tar, digest = artifact({f"app/cm{i}.yaml": CM for i in range(5)})
    with pytest.raises(ArtifactRefusedError, match="file count limit"):
        await builder.build(tar, digest, BuildSpec(path="app"))


async def test_a_digest_mismatch_rejects_the_artifact(artifact: Artifact, builder: Builder) -> None:
    tar, _ = artifact({"cm.yaml": CM})
    with pytest.raises(ArtifactRefusedError, match="digest mismatch: expected sha256:0000"):
        await builder.build(tar, "sha256:" + "0" * 64, BuildSpec())
    assert builder.renders == 0


async def test_a_bare_hex_digest_is_accepted(artifact: Artifact, builder: Builder) -> None:
    tar, digest = artifact({"cm.yaml": CM})
    objects = await builder.build(tar, digest.removeprefix("sha256:"), BuildSpec())
    assert objects[0]["kind"] == "ConfigMap"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        pytest.param("../..", "spec.path: '../..' points outside the artifact root", id="outside"),
        pytest.param("./nowhere", "kustomization path not found: './nowhere'", id="missing"),
    ],
)
async def test_a_bad_path_is_reported(
    artifact: Artifact, builder: Builder, path: str, message: str
) -> None:
    tar, digest = artifact({"cm.yaml": CM})
    with pytest.raises(BuildError) as info:
        await builder.build(tar, digest, BuildSpec(path=path))
    assert message in str(info.value)


async def test_a_kustomize_failure_reports_its_trimmed_stderr_without_temp_paths(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact({"app/kustomization.yaml": "resources: [missing.yaml]\n"})
    with pytest.raises(BuildError, match="kustomize build failed") as info:
        await builder.build(tar, digest, BuildSpec(path="app"))
    assert "missing.yaml" in str(info.value)
    assert "fluxbus-build-" not in str(info.value)
    assert info.value.reason == "BuildFailed"


async def test_spec_components_outside_the_root_are_refused(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact({"app/kustomization.yaml": "resources: [cm.yaml]\n", "app/cm.yaml": CM})
    with pytest.raises(BuildError, match=r"components\[0\]: '\.\./\.\./outside' points outside"):
        await builder.build(tar, digest, BuildSpec(path="app", components=("../../outside",)))


async def test_a_component_with_a_remote_resource_is_refused(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact(
        {
            "app/kustomization.yaml": "resources: [cm.yaml]\ncomponents: [../comp]\n",
            "app/cm.yaml": CM,
            "comp/kustomization.yaml": "kind: Component\nresources: ['https://evil.example/x.yaml']\n",
        }
    )
    with pytest.raises(BuildError, match=r"comp/kustomization\.yaml: resources\[0\]"):
        await builder.build(tar, digest, BuildSpec(path="app"))


async def test_an_inline_exec_transformer_is_refused(artifact: Artifact, builder: Builder) -> None:
    tar, digest = artifact(
        {
            "app/kustomization.yaml": """\
                resources: [cm.yaml]
                transformers:
                  - |
                    apiVersion: evil.example.com/v1
                    kind: Runner
                    metadata:
                      name: x
                """,
            "app/cm.yaml": CM,
        }
    )
    with pytest.raises(
        BuildError, match=r"transformers\[0\]: document 0: evil\.example\.com/v1/Runner"
    ):
        await builder.build(tar, digest, BuildSpec(path="app"))


async def test_a_plugin_directory_is_checked_through_its_kustomization(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact(
        {
            "app/kustomization.yaml": "resources: [cm.yaml]\ngenerators: [../plugins]\n",
            "app/cm.yaml": CM,
            "plugins/kustomization.yaml": "resources: [gen.yaml]\n",
            "plugins/gen.yaml": "apiVersion: evil.example.com/v1\nkind: Gen\nmetadata: {name: g}\n",
        }
    )
    with pytest.raises(BuildError, match=r"plugins/gen\.yaml: document 0: .*not a builtin"):
        await builder.build(tar, digest, BuildSpec(path="app"))


async def test_a_builtin_transformer_config_renders(artifact: Artifact, builder: Builder) -> None:
    tar, digest = artifact(
        {
            "app/kustomization.yaml": "resources: [cm.yaml]\ntransformers: [labels.yaml]\n",
            "app/cm.yaml": CM,
            "app/labels.yaml": """\
                apiVersion: builtin
                kind: LabelTransformer
                metadata:
                  name: labels
                labels:
                  env: prod
                fieldSpecs:
                  - path: metadata/labels
                    create: true
                """,
        }
    )
    [cm] = await builder.build(tar, digest, BuildSpec(path="app"))
    assert cm["metadata"]["labels"] == {"env": "prod"}


async def test_a_file_that_is_not_a_tarball_is_rejected(tmp_path: Path, builder: Builder) -> None:
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(b"this is not a tarball")
    digest = "sha256:" + hashlib.sha256(b"this is not a tarball").hexdigest()
    with pytest.raises(ArtifactRefusedError, match="artifact: not a valid tarball"):
        await builder.build(bogus, digest, BuildSpec())
