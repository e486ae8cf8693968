"""driftIgnoreRules as pure logic: which objects a rule's target selects, how
JSON pointers are removed, and which paths are handed to the cluster apply."""

from __future__ import annotations

from typing import Any

import pytest

from fluxbus_common.api import DriftIgnoreRule
from fluxbus_common.api.kustomize import Selector
from fluxbus_kube.logic.drift import (
    ident_of,
    ignored_paths,
    remove_pointer,
    resolve_ignored,
    target_matches,
)


def obj(
    kind: str = "Deployment",
    api_version: str = "apps/v1",
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web", "namespace": "apps"}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": {"replicas": 2}}


@pytest.mark.parametrize(
    ("target", "selected"),
    [
        pytest.param(None, True, id="no-target-selects-everything"),
        pytest.param({"kind": "Deploy.*"}, True, id="kind-regex"),
        pytest.param({"kind": "Deploy"}, False, id="regex-is-anchored"),
        pytest.param({"group": "apps", "version": "v1"}, True, id="group-and-version"),
        pytest.param({"group": ""}, True, id="empty-pattern-is-no-constraint"),
        pytest.param({"namespace": "other"}, False, id="other-namespace"),
        pytest.param({"labelSelector": "app=web"}, True, id="label-equality"),
        pytest.param({"labelSelector": "app in (web, api)"}, True, id="label-set"),
        pytest.param({"labelSelector": "app notin (web)"}, False, id="label-notin"),
        pytest.param({"labelSelector": "!autoscaled"}, True, id="label-absent"),
        pytest.param({"labelSelector": "app=web,tier=db"}, False, id="all-terms-must-hold"),
        pytest.param({"annotationSelector": "hpa"}, True, id="annotation-exists"),
        pytest.param({"labelSelector": "not a selector"}, False, id="unparsable-selects-nothing"),
    ],
)
def test_a_rule_target_selects_objects_as_kustomize_does(
    target: dict[str, str] | None, selected: bool
) -> None:
    selector = Selector.model_validate(target) if target is not None else None
    web = obj(labels={"app": "web"}, annotations={"hpa": "yes"})
    assert target_matches(selector, web) is selected


@pytest.mark.parametrize(
    ("pointer", "expected"),
    [
        pytest.param("/spec/replicas", {"spec": {"a~b": 1, "x/y": 2, "list": [0, 1]}}, id="map"),
        pytest.param("/spec/a~0b", {"spec": {"replicas": 2, "x/y": 2, "list": [0, 1]}}, id="tilde"),
        pytest.param("/spec/x~1y", {"spec": {"replicas": 2, "a~b": 1, "list": [0, 1]}}, id="slash"),
        pytest.param(
            "/spec/list/0", {"spec": {"replicas": 2, "a~b": 1, "x/y": 2, "list": [1]}}, id="index"
        ),
        pytest.param(
            "/spec/list/9",
            {"spec": {"replicas": 2, "a~b": 1, "x/y": 2, "list": [0, 1]}},
            id="index-out-of-range",
        ),
        pytest.param(
            "/no/such", {"spec": {"replicas": 2, "a~b": 1, "x/y": 2, "list": [0, 1]}}, id="absent"
        ),
    ],
)
def test_json_pointers_remove_exactly_the_field_they_name(
    pointer: str, expected: dict[str, Any]
) -> None:
    doc = {"spec": {"replicas": 2, "a~b": 1, "x/y": 2, "list": [0, 1]}}
    remove_pointer(doc, pointer)
    assert doc == expected


def test_only_objects_a_rule_selects_get_ignored_paths_for_the_cluster_apply() -> None:
    deploy, service = obj(), obj("Service", "v1")
    rules = [
        DriftIgnoreRule.model_validate(
            {"paths": ["/spec/replicas"], "target": {"kind": "Deployment"}}
        ),
        DriftIgnoreRule.model_validate({"paths": ["/metadata/labels/team"]}),
    ]
    assert ignored_paths([deploy, service], rules) == {
        ident_of(deploy): ["/spec/replicas", "/metadata/labels/team"],
        ident_of(service): ["/metadata/labels/team"],
    }
    assert ignored_paths([deploy, service], []) == {}


def managed(manager: str, operation: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"manager": manager, "operation": operation, "fieldsV1": fields}


@pytest.mark.parametrize(
    ("live", "expected"),
    [
        pytest.param(None, {"replicas": 2}, id="created-with-the-value-from-git"),
        pytest.param(
            {"spec": {"replicas": 5}, "metadata": {"managedFields": []}},
            {"replicas": 5},
            id="adopted-when-no-other-applier-owns-it",
        ),
        pytest.param(
            {
                "spec": {"replicas": 5},
                "metadata": {
                    "managedFields": [managed("hpa", "Apply", {"f:spec": {"f:replicas": {}}})]
                },
            },
            {},
            id="stripped-when-another-applier-owns-it",
        ),
        pytest.param(
            {"spec": {}, "metadata": {"managedFields": []}},
            {},
            id="stripped-when-the-live-object-has-none",
        ),
    ],
)
def test_ignored_fields_are_created_then_stripped_or_adopted_as_flux_documents(
    live: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    """spec "Ignore Rules": Strip when another Apply manager owns the field, else Adopt."""
    assert resolve_ignored(obj(), live, ["/spec/replicas"])["spec"] == expected
