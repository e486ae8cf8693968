"""The content-addressed render cache: artifacts whose files kustomize reads are the
same share one kustomize render; any change kustomize would see renders again;
substitution and `commonMetadata` are applied per build over the shared render."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from fluxbus_kustomize.build import Builder, BuildError, BuildSpec

Artifact = Callable[..., tuple[Path, str]]

MONOREPO: dict[str, str] = {
    "README.md": "the monorepo\n",
    "docs/notes.md": "nothing kustomize reads\n",
    "other/app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n",
    "base/kustomization.yaml": """\
        resources: [deployment.yaml]
        configMapGenerator:
          - name: settings
            files: [settings.properties]
        """,
    "base/deployment.yaml": """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          replicas: 1
          selector:
            matchLabels: {app: web}
          template:
            metadata:
              labels: {app: web}
            spec:
              containers:
                - name: web
                  image: ghcr.io/example/web:1.0.0
        """,
    "base/settings.properties": "color=blue\n",
    "clusters/prod/kustomization.yaml": """\
        resources: [../../base]
        components: [../../components/debug]
        patches:
          - path: ../../patches/replicas.yaml
        """,
    "patches/replicas.yaml": """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          replicas: 3
        """,
    "components/debug/kustomization.yaml": """\
        apiVersion: kustomize.config.k8s.io/v1alpha1
        kind: Component
        resources: [debug.yaml]
        """,
    "components/debug/debug.yaml": """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: debug
        data:
          level: verbose
          greeting: hello ${who}
        """,
}
PROD = BuildSpec(path="clusters/prod")


def changed(files: Mapping[str, str], path: str, old: str, new: str) -> dict[str, str]:
    assert old in files[path]
    return {**files, path: files[path].replace(old, new)}


def names(objects: list[dict[str, Any]]) -> list[str]:
    return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objects)


async def test_artifacts_with_identical_app_files_render_once(
    artifact: Artifact, builder: Builder
) -> None:
    tar_a, digest_a = artifact(MONOREPO)
    tar_b, digest_b = artifact({**MONOREPO, "README.md": "another repository\n"})
    assert digest_a != digest_b
    first = await builder.build(tar_a, digest_a, PROD)
    second = await builder.build(tar_b, digest_b, PROD)
    assert builder.renders == 1
    assert first == second
    assert "Deployment/web" in names(first)


async def test_concurrent_builds_of_identical_content_render_once(
    artifact: Artifact, builder: Builder
) -> None:
    artifacts = [artifact({**MONOREPO, "README.md": f"app {i}\n"}) for i in range(4)]
    results = await asyncio.gather(*(builder.build(tar, d, PROD) for tar, d in artifacts))
    assert builder.renders == 1
    assert all(r == results[0] for r in results)


async def test_a_cached_render_is_not_changed_by_its_callers(
    artifact: Artifact, builder: Builder
) -> None:
    tar_a, digest_a = artifact(MONOREPO)
    tar_b, digest_b = artifact({**MONOREPO, "README.md": "b\n"})
    first = await builder.build(tar_a, digest_a, PROD)
    for obj in first:
        obj["metadata"]["name"] = "mutated by the caller"
    second = await builder.build(tar_b, digest_b, PROD)
    assert "Deployment/web" in names(second)


async def test_the_same_artifact_and_spec_are_answered_without_reading_the_artifact(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact(MONOREPO)
    first = await builder.build(tar, digest, PROD)
    tar.unlink()
    assert await builder.build(tar, digest, PROD) == first
    assert builder.cache.get(builder.cache.key(digest, PROD, {}, True)) == first


@pytest.mark.parametrize(
    ("path", "old", "new"),
    [
        pytest.param("base/deployment.yaml", "web:1.0.0", "web:2.0.0", id="base-two-levels-up"),
        pytest.param("base/kustomization.yaml", "name: settings", "name: config", id="base-kus"),
        pytest.param("patches/replicas.yaml", "replicas: 3", "replicas: 5", id="patch-file"),
        pytest.param("base/settings.properties", "blue", "green", id="configmap-generator-file"),
        pytest.param("components/debug/debug.yaml", "verbose", "quiet", id="component-resource"),
        pytest.param(
            "components/debug/kustomization.yaml",
            "resources: [debug.yaml]",
            "resources: [debug.yaml]\n        namePrefix: dbg-",
            id="component-kustomization",
        ),
        pytest.param(
            "clusters/prod/kustomization.yaml",
            "resources: [../../base]",
            "namespace: prod\n        resources: [../../base]",
            id="root-kustomization",
        ),
    ],
)
async def test_a_change_in_any_referenced_file_renders_again(
    artifact: Artifact, builder: Builder, path: str, old: str, new: str
) -> None:
    tar_a, digest_a = artifact(MONOREPO)
    tar_b, digest_b = artifact(changed(MONOREPO, path, old, new))
    first = await builder.build(tar_a, digest_a, PROD)
    second = await builder.build(tar_b, digest_b, PROD)
    assert builder.renders == 2
    assert first != second


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"README.md": "changed\n"}, id="readme"),
        pytest.param({"docs/notes.md": "changed\n"}, id="another-directory"),
        pytest.param(
            {"other/app.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n"},
            id="another-app-of-the-monorepo",
        ),
        pytest.param(
            {"clusters/prod/unused.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n"},
            id="an-unlisted-file-next-to-the-kustomization",
        ),
    ],
)
async def test_a_change_only_in_an_unreferenced_file_does_not_render_again(
    artifact: Artifact, builder: Builder, extra: dict[str, str]
) -> None:
    tar_a, digest_a = artifact(MONOREPO)
    tar_b, digest_b = artifact({**MONOREPO, **extra})
    assert digest_a != digest_b
    first = await builder.build(tar_a, digest_a, PROD)
    assert await builder.build(tar_b, digest_b, PROD) == first
    assert builder.renders == 1


async def test_a_second_kustomization_file_in_the_chain_is_part_of_the_key(
    artifact: Artifact, builder: Builder
) -> None:
    """kustomize refuses a directory with two kustomization files: that must not be
    answered from the cache of the directory with one."""
    tar_a, digest_a = artifact(MONOREPO)
    tar_b, digest_b = artifact({**MONOREPO, "base/Kustomization": "resources: []\n"})
    await builder.build(tar_a, digest_a, PROD)
    with pytest.raises(BuildError, match=r"(?i)multiple"):
        await builder.build(tar_b, digest_b, PROD)
    assert builder.renders == 2


async def test_different_substitution_variables_over_one_render_give_different_objects(
    artifact: Artifact, builder: Builder
) -> None:
    tar_a, digest_a = artifact(MONOREPO)
    tar_b, digest_b = artifact({**MONOREPO, "README.md": "b\n"})
    spec = BuildSpec(path="clusters/prod", post_build=True)
    for_alice = await builder.build(tar_a, digest_a, spec, {"who": "alice"})
    for_bob = await builder.build(tar_b, digest_b, spec, {"who": "bob"})
    again_for_alice = await builder.build(tar_b, digest_b, spec, {"who": "alice"})
    unsubstituted = await builder.build(tar_a, digest_a, PROD)
    assert builder.renders == 1

    def greeting(objects: list[dict[str, Any]]) -> str:
        [debug] = [o for o in objects if o["metadata"]["name"] == "debug"]
        return str(debug["data"]["greeting"])

    assert greeting(for_alice) == "hello alice"
    assert greeting(for_bob) == "hello bob"
    assert greeting(again_for_alice) == "hello alice"
    assert greeting(unsubstituted) == "hello ${who}"


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(BuildSpec(path="clusters/prod", target_namespace="apps"), id="namespace"),
        pytest.param(BuildSpec(path="clusters/prod", name_prefix="p-"), id="name-prefix"),
        pytest.param(BuildSpec(path="clusters/prod", name_suffix="-s"), id="name-suffix"),
        pytest.param(
            BuildSpec(
                path="clusters/prod",
                images=({"name": "ghcr.io/example/web", "newTag": "9.9.9"},),
            ),
            id="images",
        ),
        pytest.param(
            BuildSpec(
                path="clusters/prod",
                patches=(
                    {
                        "patch": "- op: replace\n  path: /spec/replicas\n  value: 7\n",
                        "target": {"kind": "Deployment"},
                    },
                ),
            ),
            id="patches",
        ),
        pytest.param(
            BuildSpec(path="clusters/prod", components=("../../components/extra",)),
            id="components",
        ),
    ],
)
async def test_overrides_written_into_the_kustomization_are_part_of_the_key(
    artifact: Artifact, builder: Builder, spec: BuildSpec
) -> None:
    files = {
        **MONOREPO,
        "components/extra/kustomization.yaml": """\
            apiVersion: kustomize.config.k8s.io/v1alpha1
            kind: Component
            resources: [extra.yaml]
            """,
        "components/extra/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    }
    tar_a, digest_a = artifact(files)
    tar_b, digest_b = artifact({**files, "README.md": "b\n"})
    plain = await builder.build(tar_a, digest_a, PROD)
    overridden = await builder.build(tar_b, digest_b, spec)
    assert builder.renders == 2
    assert plain != overridden


async def test_common_metadata_is_applied_per_build_over_one_render(
    artifact: Artifact, builder: Builder
) -> None:
    tar_a, digest_a = artifact(MONOREPO)
    tar_b, digest_b = artifact({**MONOREPO, "README.md": "b\n"})
    plain = await builder.build(tar_a, digest_a, PROD)
    labelled = await builder.build(
        tar_b, digest_b, BuildSpec(path="clusters/prod", common_labels={"team": "web"})
    )
    assert builder.renders == 1
    assert all("team" not in (o["metadata"].get("labels") or {}) for o in plain)
    assert all(o["metadata"]["labels"]["team"] == "web" for o in labelled)


GENERATED = {
    "README.md": "one\n",
    "app/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
    "app/nested/b.yml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
    "app/notes.txt": "not listed\n",
}


@pytest.mark.parametrize(
    ("extra", "renders"),
    [
        pytest.param({"README.md": "two\n"}, 1, id="readme"),
        pytest.param({"app/notes.txt": "changed\n"}, 1, id="a-file-that-is-not-listed"),
        pytest.param(
            {"app/nested/b.yml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"},
            2,
            id="a-listed-yaml-file",
        ),
        pytest.param(
            {"app/new.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: new}\n"},
            2,
            id="a-new-yaml-file",
        ),
    ],
)
async def test_a_generated_kustomization_is_keyed_by_the_files_it_lists(
    artifact: Artifact, builder: Builder, extra: dict[str, str], renders: int
) -> None:
    tar_a, digest_a = artifact(GENERATED)
    tar_b, digest_b = artifact({**GENERATED, **extra})
    first = await builder.build(tar_a, digest_a, BuildSpec(path="app"))
    second = await builder.build(tar_b, digest_b, BuildSpec(path="app"))
    assert builder.renders == renders
    assert (first == second) == (renders == 1)


async def test_plugin_configs_fall_back_to_keying_by_the_whole_tree(
    artifact: Artifact, builder: Builder
) -> None:
    files = {
        "README.md": "one\n",
        "app/kustomization.yaml": "resources: [cm.yaml]\ntransformers: [labels.yaml]\n",
        "app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
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
    tar_a, digest_a = artifact(files)
    tar_b, digest_b = artifact(files)  # the same tree, packed again
    tar_c, digest_c = artifact({**files, "README.md": "two\n"})
    await builder.build(tar_a, digest_a, BuildSpec(path="app"))
    await builder.build(tar_b, digest_b, BuildSpec(path="app"))
    assert builder.renders == 1
    [cm] = await builder.build(tar_c, digest_c, BuildSpec(path="app"))
    assert builder.renders == 2
    assert cm["metadata"]["labels"] == {"env": "prod"}
