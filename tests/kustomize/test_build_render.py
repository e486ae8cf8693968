"""Rendering artifacts with the real kustomize: overlays, generated kustomizations,
the Kustomization's overrides, post-build substitution and the render cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fluxbus_common.api.kustomize import KustomizationSpec
from fluxbus_kustomize.build import Builder, BuildError, BuildSpec, PostBuildError

Artifact = Callable[..., tuple[Path, str]]


def deployment(name: str = "podinfo", image: str = "ghcr.io/stefanprodan/podinfo:6.0.0") -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
        - name: app
          image: {image}
"""


SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: podinfo
spec:
  selector:
    app: podinfo
  ports:
    - port: 9898
"""


def overlay(namespace: str, replicas: int, tag: str, extra: str = "") -> str:
    return f"""\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {namespace}
resources:
  - ../../base
replicas:
  - name: podinfo
    count: {replicas}
images:
  - name: ghcr.io/stefanprodan/podinfo
    newTag: {tag}
{extra}"""


GITOPS_REPO = {
    "base/kustomization.yaml": "resources: [deployment.yaml, service.yaml]\n",
    "base/deployment.yaml": deployment(),
    "base/service.yaml": SERVICE,
    "overlays/dev/kustomization.yaml": overlay("dev", 1, "6.1.0-dev"),
    "overlays/staging/kustomization.yaml": overlay("staging", 2, "6.1.0-rc.1"),
    # prod patches with a file from a parent directory: needs LoadRestrictionsNone
    "overlays/prod/kustomization.yaml": overlay(
        "prod", 3, "6.1.0", "patches:\n  - path: ../../patches/limits.yaml\n"
    ),
    "patches/limits.yaml": """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: podinfo
        spec:
          template:
            spec:
              containers:
                - name: app
                  resources:
                    limits:
                      memory: 256Mi
        """,
}


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [obj] = [o for o in objects if o["kind"] == kind]
    return obj


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return by_kind(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize(
    ("env", "replicas", "image"),
    [
        pytest.param("dev", 1, "ghcr.io/stefanprodan/podinfo:6.1.0-dev", id="dev"),
        pytest.param("staging", 2, "ghcr.io/stefanprodan/podinfo:6.1.0-rc.1", id="staging"),
        pytest.param("prod", 3, "ghcr.io/stefanprodan/podinfo:6.1.0", id="prod"),
    ],
)
async def test_each_overlay_renders_its_own_replicas_image_and_namespace(
    artifact: Artifact, builder: Builder, env: str, replicas: int, image: str
) -> None:
    tar, digest = artifact(GITOPS_REPO)
    objects = await builder.build(tar, digest, BuildSpec(path=f"./overlays/{env}"))
    deploy = by_kind(objects, "Deployment")
    assert deploy["metadata"]["namespace"] == env
    assert deploy["spec"]["replicas"] == replicas
    assert container(objects)["image"] == image
    assert by_kind(objects, "Service")["metadata"]["namespace"] == env


async def test_prod_overlay_uses_a_patch_from_a_parent_directory(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact(GITOPS_REPO)
    objects = await builder.build(tar, digest, BuildSpec(path="overlays/prod"))
    assert container(objects)["resources"] == {"limits": {"memory": "256Mi"}}


async def test_a_path_without_kustomization_gets_one_generated_from_its_yaml_files(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact(
        {
            "plain/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
            "plain/nested/b.yml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
            "plain/README.md": "not yaml, not listed\n",
            # a sub-directory with its own kustomization is referenced, not walked
            "plain/sub/kustomization.yaml": "resources: [c.yaml]\n",
            "plain/sub/c.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
            "plain/sub/unlisted.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
            "plain/sub/deeper/d.yaml": "not: kubernetes\n",
        }
    )
    objects = await builder.build(tar, digest, BuildSpec(path="plain"))
    assert sorted(o["metadata"]["name"] for o in objects) == ["a", "b", "c"]


async def test_generated_kustomization_rejects_a_yaml_file_that_is_not_kubernetes(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact(
        {
            "plain/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
            "plain/ci/config.yaml": "stages: [build, test]\n",
        }
    )
    with pytest.raises(BuildError, match=r"plain/ci/config\.yaml.*no apiVersion and no kind"):
        await builder.build(tar, digest, BuildSpec(path="plain"))


async def test_the_artifact_root_is_the_default_path(artifact: Artifact, builder: Builder) -> None:
    tar, digest = artifact({"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"})
    objects = await builder.build(tar, digest, BuildSpec())
    assert [o["metadata"]["name"] for o in objects] == ["a"]


# --------------------------------------------------------------------------- overrides

APP = {
    "app/kustomization.yaml": "resources: [deployment.yaml, service.yaml]\n",
    "app/deployment.yaml": deployment(),
    "app/service.yaml": SERVICE,
    "components/debug/kustomization.yaml": """\
        apiVersion: kustomize.config.k8s.io/v1alpha1
        kind: Component
        resources: [debug.yaml]
        """,
    "components/debug/debug.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: debug}\n",
}


async def test_target_namespace_sets_the_namespace_of_every_object(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact(APP)
    objects = await builder.build(tar, digest, BuildSpec(path="app", target_namespace="apps"))
    assert {o["metadata"]["namespace"] for o in objects} == {"apps"}


async def test_name_prefix_and_suffix_rename_objects_and_their_references(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact(APP)
    objects = await builder.build(
        tar, digest, BuildSpec(path="app", name_prefix="pre-", name_suffix="-suf")
    )
    assert {o["metadata"]["name"] for o in objects} == {"pre-podinfo-suf"}


async def test_patches_apply_to_the_objects_their_target_selects(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact(APP)
    spec = BuildSpec(
        path="app",
        patches=(
            {
                "patch": "- op: replace\n  path: /spec/replicas\n  value: 5\n",
                "target": {"kind": "Deployment", "name": "podinfo"},
            },
            {
                "patch": "apiVersion: v1\nkind: Service\nmetadata:\n  name: any\n"
                "  annotations:\n    patched: 'yes'\n",
                "target": {"kind": "Service"},
            },
        ),
    )
    objects = await builder.build(tar, digest, spec)
    assert by_kind(objects, "Deployment")["spec"]["replicas"] == 5
    assert by_kind(objects, "Service")["metadata"]["annotations"] == {"patched": "yes"}


async def test_images_override_replaces_name_and_tag(artifact: Artifact, builder: Builder) -> None:
    tar, digest = artifact(APP)
    spec = BuildSpec(
        path="app",
        images=(
            {
                "name": "ghcr.io/stefanprodan/podinfo",
                "newName": "registry.local/podinfo",
                "newTag": "7",
            },
        ),
    )
    objects = await builder.build(tar, digest, spec)
    assert container(objects)["image"] == "registry.local/podinfo:7"


async def test_components_are_added_relative_to_the_path(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact(APP)
    objects = await builder.build(
        tar, digest, BuildSpec(path="app", components=("../components/debug",))
    )
    assert "debug" in {o["metadata"]["name"] for o in objects}


async def test_missing_components_fail_unless_ignored(artifact: Artifact, builder: Builder) -> None:
    tar, digest = artifact(APP)
    with pytest.raises(BuildError, match="kustomize build failed"):
        await builder.build(tar, digest, BuildSpec(path="app", components=("../missing",)))
    objects = await builder.build(
        tar,
        digest,
        BuildSpec(path="app", components=("../missing",), ignore_missing_components=True),
    )
    assert len(objects) == 2


async def test_common_metadata_labels_every_object_but_not_selectors(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact(APP)
    spec = BuildSpec(
        path="app", common_labels={"team": "web"}, common_annotations={"owner": "web@example.com"}
    )
    objects = await builder.build(tar, digest, spec)
    for obj in objects:
        assert obj["metadata"]["labels"]["team"] == "web"
        assert obj["metadata"]["annotations"]["owner"] == "web@example.com"
    assert by_kind(objects, "Service")["spec"]["selector"] == {"app": "podinfo"}
    assert by_kind(objects, "Deployment")["spec"]["selector"] == {"matchLabels": {"app": "podinfo"}}


# --------------------------------------------------------------------------- substitution

SUBST = {
    "cm.yaml": """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: settings
          namespace: ${namespace:=default}
        data:
          region: ${region}
          escaped: $${region}
          script: echo $HOME
        """,
    "deploy.yaml": deployment(image="podinfo:${tag}").replace(
        "replicas: 1", "replicas: ${replicas}"
    ),
    "raw.yaml": """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: raw
          annotations:
            kustomize.toolkit.fluxcd.io/substitute: disabled
        data:
          template: ${not_a_variable}
        """,
}


async def test_post_build_substitutes_variables_in_every_object(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact(SUBST)
    spec = BuildSpec(post_build=True, substitute={"region": "eu-central-1", "replicas": "3"})
    objects = await builder.build(tar, digest, spec, {"tag": "6.2.0", "region": "ignored"})
    settings = next(o for o in objects if o["metadata"]["name"] == "settings")
    assert settings["metadata"]["namespace"] == "default"
    assert settings["data"] == {
        "region": "eu-central-1",
        "escaped": "${region}",
        "script": "echo $HOME",
    }
    deploy = by_kind(objects, "Deployment")
    assert deploy["spec"]["replicas"] == 3, "a substituted number is parsed as a number"
    assert container(objects)["image"] == "podinfo:6.2.0"
    raw = next(o for o in objects if o["metadata"]["name"] == "raw")
    assert raw["data"] == {"template": "${not_a_variable}"}


async def test_strict_substitution_names_the_missing_variable_and_the_object(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact(SUBST)
    spec = BuildSpec(post_build=True, substitute={"tag": "1", "replicas": "1"})
    with pytest.raises(PostBuildError, match=r'ConfigMap/.*/settings: .*"region"') as info:
        await builder.build(tar, digest, spec)
    assert info.value.reason == "BuildFailed"  # Flux: a failed substitution is BuildFailed


async def test_without_post_build_nothing_is_substituted(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact(SUBST)
    objects = await builder.build(tar, digest, BuildSpec(), {"region": "x"})
    settings = next(o for o in objects if o["metadata"]["name"] == "settings")
    assert settings["data"]["region"] == "${region}"


# --------------------------------------------------------------------------- cache


async def test_the_same_inputs_are_rendered_once(artifact: Artifact, builder: Builder) -> None:
    tar, digest = artifact(GITOPS_REPO)
    spec = BuildSpec(path="overlays/dev")
    first = await builder.build(tar, digest, spec)
    first[0]["metadata"]["name"] = "mutated by the caller"
    second = await builder.build(tar, digest, spec)
    assert builder.renders == 1
    assert second[0]["metadata"]["name"] != "mutated by the caller"


@pytest.mark.parametrize(
    ("spec", "variables"),
    [
        pytest.param(BuildSpec(path="overlays/staging"), None, id="another-path"),
        pytest.param(BuildSpec(path="overlays/dev", target_namespace="x"), None, id="an-override"),
    ],
)
async def test_a_change_of_any_input_renders_again(
    artifact: Artifact, builder: Builder, spec: BuildSpec, variables: dict[str, str] | None
) -> None:
    tar, digest = artifact(GITOPS_REPO)
    await builder.build(tar, digest, BuildSpec(path="overlays/dev"))
    await builder.build(tar, digest, spec, variables)
    assert builder.renders == 2


async def test_other_substitution_inputs_reuse_the_render(
    artifact: Artifact, builder: Builder
) -> None:
    """Substitution runs per build over the cached kustomize output."""
    tar, digest = artifact(GITOPS_REPO)
    await builder.build(tar, digest, BuildSpec(path="overlays/dev"))
    await builder.build(tar, digest, BuildSpec(path="overlays/dev", post_build=True), {"a": "1"})
    assert builder.renders == 1


async def test_the_work_directory_is_removed_after_a_build(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact(GITOPS_REPO)
    await builder.build(tar, digest, BuildSpec(path="overlays/dev"))
    with pytest.raises(BuildError):
        await builder.build(tar, digest, BuildSpec(path="overlays/none"))
    assert builder.temp_dir is not None
    assert list(builder.temp_dir.iterdir()) == []


async def test_overrides_are_written_into_a_kustomization_yml_too(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact(
        {
            "app/kustomization.yml": "resources: [deployment.yaml]\nnamespace: old\n",
            "app/deployment.yaml": deployment(),
        }
    )
    objects = await builder.build(tar, digest, BuildSpec(path="app", target_namespace="new"))
    assert by_kind(objects, "Deployment")["metadata"]["namespace"] == "new"


async def test_overrides_apply_to_a_generated_kustomization(
    artifact: Artifact, builder: Builder
) -> None:
    tar, digest = artifact({"plain/deployment.yaml": deployment()})
    spec = BuildSpec(path="plain", target_namespace="apps", name_prefix="dev-")
    [deploy] = await builder.build(tar, digest, spec)
    assert deploy["metadata"] == {"name": "dev-podinfo", "namespace": "apps"}


async def test_a_kustomization_spec_maps_onto_the_build(
    artifact: Artifact, builder: Builder
) -> None:
    spec = KustomizationSpec.model_validate(
        {
            "interval": "5m",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "repo"},
            "path": "./app",
            "targetNamespace": "apps",
            "images": [{"name": "ghcr.io/stefanprodan/podinfo", "newTag": "9.9.9"}],
            "patches": [
                {
                    "patch": "- op: replace\n  path: /spec/replicas\n  value: 4\n",
                    "target": {"kind": "Deployment", "labelSelector": "tier=web"},
                }
            ],
            "commonMetadata": {"labels": {"team": "web"}},
            "postBuild": {"substitute": {"greeting": "hi"}},
        }
    )
    tar, digest = artifact(
        {
            "app/deployment.yaml": deployment().replace(
                "  name: podinfo\n",
                "  name: podinfo\n  labels:\n    tier: web\n  annotations:\n    say: ${greeting}\n",
                1,
            )
        }
    )
    [deploy] = await builder.build(tar, digest, BuildSpec.from_kustomization(spec))
    assert deploy["metadata"]["namespace"] == "apps"
    assert deploy["metadata"]["labels"] == {"tier": "web", "team": "web"}
    assert deploy["metadata"]["annotations"] == {"say": "hi"}
    assert deploy["spec"]["replicas"] == 4
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":9.9.9")


async def test_substitution_works_on_kustomizes_output_like_flux(
    artifact: Artifact, builder: Builder
) -> None:
    # kustomize re-emits YAML without the quotes of the source, so (as in Flux)
    # a number needs the `${quote}` trick to stay a string.
    tar, digest = artifact(
        {
            "cm.yaml": """\
                apiVersion: v1
                kind: ConfigMap
                metadata:
                  name: ids
                data:
                  quoted: "${id}"
                  kept: ${quote}${id}${quote}
                """,
            "widget.yaml": """\
                apiVersion: example.com/v1
                kind: Widget
                metadata:
                  name: w
                spec:
                  count: ${id}
                  since: 2024-01-01
                  window: 1:30
                """,
        }
    )
    spec = BuildSpec(post_build=True, substitute={"id": "123", "quote": '"'})
    objects = await builder.build(tar, digest, spec)
    assert by_kind(objects, "ConfigMap")["data"] == {"quoted": 123, "kept": "123"}
    widget = by_kind(objects, "Widget")["spec"]
    assert (widget["count"], widget["window"]) == (123, "1:30")
    assert isinstance(widget["since"], str), "dates stay strings, as in Go's YAML"
