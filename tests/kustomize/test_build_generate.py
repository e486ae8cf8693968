"""Flux's generated-kustomization rule and its overrides, as pure decisions."""

from __future__ import annotations

import pytest

from fluxbus_kustomize.logic.generate import (
    GenerateError,
    Overrides,
    apply_common_metadata,
    apply_overrides,
    check_kubernetes_yaml,
    generated_kustomization,
    kustomization_file,
    plan_generated,
)


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        pytest.param(["kustomization.yaml", "a.yaml"], "kustomization.yaml", id="yaml"),
        pytest.param(["kustomization.yml"], "kustomization.yml", id="yml"),
        pytest.param(["Kustomization"], "Kustomization", id="capitalised"),
        pytest.param(["deploy.yaml"], None, id="none"),
    ],
)
def test_kustomization_file_is_found_by_kustomizes_names(
    names: list[str], expected: str | None
) -> None:
    assert kustomization_file(names) == expected


def test_generated_resources_follow_the_walk_and_stop_at_nested_kustomizations() -> None:
    resources, to_check = plan_generated(
        [
            "z.yaml",
            "a.yml",
            "notes.txt",
            "apps/deploy.yaml",
            "apps/sub/kustomization.yaml",
            "apps/sub/cm.yaml",
            "apps/sub/deep/x.yaml",
            "b/c/d.yaml",
        ]
    )
    assert resources == ["./a.yml", "./apps/deploy.yaml", "./apps/sub", "./b/c/d.yaml", "./z.yaml"]
    assert to_check == ["a.yml", "apps/deploy.yaml", "b/c/d.yaml", "z.yaml"]


def test_generated_kustomization_lists_the_resources() -> None:
    assert generated_kustomization(["./a.yaml"]) == {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["./a.yaml"],
    }


def test_kubernetes_yaml_with_several_documents_passes() -> None:
    check_kubernetes_yaml(
        "a.yaml", "---\napiVersion: v1\nkind: A\n---\n---\napiVersion: v1\nkind: B\n"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("name: x\n", "document 0 has no apiVersion and no kind", id="no-type"),
        pytest.param("apiVersion: v1\n", "document 0 has no kind", id="no-kind"),
        pytest.param(
            "apiVersion: v1\nkind: A\n---\n- a\n", "document 1 is not an object", id="list"
        ),
        pytest.param("a: [\n", "failed to decode Kubernetes YAML from ci.yaml", id="broken"),
    ],
)
def test_non_kubernetes_yaml_is_an_error_naming_the_file(text: str, message: str) -> None:
    with pytest.raises(GenerateError, match=r"ci\.yaml") as info:
        check_kubernetes_yaml("ci.yaml", text)
    assert message in str(info.value)


def test_overrides_are_written_into_the_root_kustomization_as_flux_does() -> None:
    kus = {
        "resources": ["deploy.yaml"],
        "namespace": "old",
        "patches": [{"path": "own.yaml"}],
        "images": [{"name": "app", "newTag": "1"}, {"name": "sidecar", "newTag": "2"}],
        "components": ["../a"],
    }
    out = apply_overrides(
        kus,
        Overrides(
            target_namespace="apps",
            name_prefix="p-",
            name_suffix="-s",
            patches=({"patch": "x", "target": {"kind": "Deployment"}},),
            images=({"name": "app", "newName": "reg/app", "newTag": None},),
            components=("../b",),
        ),
    )
    assert out["namespace"] == "apps"
    assert (out["namePrefix"], out["nameSuffix"]) == ("p-", "-s")
    assert out["patches"] == [
        {"path": "own.yaml"},
        {"patch": "x", "target": {"kind": "Deployment"}},
    ]
    assert out["images"] == [
        {"name": "app", "newName": "reg/app"},
        {"name": "sidecar", "newTag": "2"},
    ]
    assert out["components"] == ["../a", "../b"]
    assert kus["namespace"] == "old", "the input is not modified"


def test_no_overrides_leave_the_kustomization_as_is() -> None:
    assert not Overrides().touches_kustomization()


def test_common_metadata_overrides_existing_keys_and_keeps_others() -> None:
    obj = {"kind": "ConfigMap", "metadata": {"name": "a", "labels": {"team": "old", "keep": "1"}}}
    [out] = apply_common_metadata([obj], {"team": "web"}, {"owner": "me"})
    assert out["metadata"]["labels"] == {"team": "web", "keep": "1"}
    assert out["metadata"]["annotations"] == {"owner": "me"}
    assert obj["metadata"]["labels"]["team"] == "old"
