"""The pure halves of kubelite's API machinery: the type registry and admission."""

from __future__ import annotations

from typing import Any

import pytest

from fluxbus_kubelite.admission import check_fields, immutable_fields, set_defaults
from fluxbus_kubelite.errors import ApiError
from fluxbus_kubelite.registry import Registry, sort_versions

WIDGETS_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "kind": "Widget"},
        "versions": [
            {"name": "v1alpha1", "served": True, "storage": False},
            {"name": "v1", "served": True, "storage": True},
            {"name": "v2beta1", "served": False, "storage": False},
        ],
    },
}


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        pytest.param(["v1beta1", "v1", "v2"], ["v2", "v1", "v1beta1"], id="ga-first"),
        pytest.param(
            ["v1alpha1", "v1beta2", "v1beta1"],
            ["v1beta2", "v1beta1", "v1alpha1"],
            id="beta-before-alpha",
        ),
        pytest.param(["foo", "v1"], ["v1", "foo"], id="non-kube-names-last"),
    ],
)
def test_versions_sort_by_kubernetes_priority(versions: list[str], expected: list[str]) -> None:
    assert sort_versions(versions) == expected


def test_a_crd_registers_its_served_versions_and_unregisters_them_on_removal() -> None:
    registry = Registry()
    registry.sync_crd(WIDGETS_CRD, "widgets.example.com")
    assert registry.group_versions("example.com") == ["v1", "v1alpha1"]
    preferred = registry.type_for_key(("example.com", "widgets"))
    assert preferred is not None and preferred.version == "v1"
    assert registry.type_for_kind("example.com/v1alpha1", "Widget") is not None
    assert "example.com" in registry.group_order

    registry.sync_crd(None, "widgets.example.com")
    assert registry.lookup("example.com", "v1", "widgets") is None
    assert "example.com" not in registry.group_order


def test_warn_field_validation_prunes_unknown_fields_and_warns() -> None:
    rt = Registry().lookup("", "v1", "configmaps")
    assert rt is not None
    warnings: list[str] = []
    obj = {"metadata": {"name": "c"}, "data": {"a": "b"}, "colour": "blue"}
    pruned = check_fields(rt, obj, "Warn", warnings, apply=False)
    assert "colour" not in pruned
    assert warnings == ['unknown field "colour"']


def test_strict_field_validation_rejects_unknown_fields() -> None:
    rt = Registry().lookup("", "v1", "configmaps")
    assert rt is not None
    with pytest.raises(ApiError) as err:
        check_fields(rt, {"metadata": {"name": "c"}, "colour": "blue"}, "Strict", [], apply=False)
    assert err.value.code == 400


def test_a_secret_gets_its_string_data_encoded_and_a_default_type() -> None:
    rt = Registry().lookup("", "v1", "secrets")
    assert rt is not None
    obj: dict[str, Any] = {"metadata": {"name": "s"}, "stringData": {"token": "abc"}}
    set_defaults(rt, obj)
    assert obj == {"metadata": {"name": "s"}, "data": {"token": "YWJj"}, "type": "Opaque"}


def test_an_immutable_configmap_refuses_new_data() -> None:
    rt = Registry().lookup("", "v1", "configmaps")
    assert rt is not None
    old = {"metadata": {"name": "c"}, "immutable": True, "data": {"a": "1"}}
    new = {"metadata": {"name": "c"}, "immutable": True, "data": {"a": "2"}}
    assert [path for path, _ in immutable_fields(rt, new, old)] == ["data"]
