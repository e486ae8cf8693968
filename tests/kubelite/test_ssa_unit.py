"""Pure parts of server-side apply: FieldsV1, merge order, paths, pruning."""

from __future__ import annotations

import pytest

from fluxbus_kubelite import ssa
from fluxbus_kubelite.resources import builtin_types
from fluxbus_kubelite.schema import builtin_shape


def deployment_shape() -> ssa.Shape:
    shape = builtin_shape("apps", "v1", "Deployment")
    assert shape is not None
    return shape


def test_fieldsv1_round_trips_members_and_parents() -> None:
    fs = {
        ("f:metadata", "f:labels", "f:app"),
        ("f:spec", "f:containers", 'k:{"name":"a"}'),
        ("f:spec", "f:containers", 'k:{"name":"a"}', "f:image"),
        ("f:metadata", "f:finalizers", 'v:"x"'),
    }
    encoded = ssa.encode_fields(fs)
    assert encoded["f:spec"]["f:containers"]['k:{"name":"a"}'] == {".": {}, "f:image": {}}
    assert ssa.decode_fields(encoded) == fs


@pytest.mark.parametrize(
    ("path", "text"),
    [
        pytest.param(("f:spec", "f:replicas"), ".spec.replicas", id="fields"),
        pytest.param(
            ("f:spec", "f:c", 'k:{"name":"x"}', "f:image"), '.spec.c[name="x"].image', id="key"
        ),
        pytest.param(
            ("f:p", 'k:{"containerPort":80,"protocol":"TCP"}'),
            '.p[containerPort=80,protocol="TCP"]',
            id="two-keys",
        ),
        pytest.param(
            ("f:metadata", "f:finalizers", 'v:"a"'), '.metadata.finalizers[="a"]', id="set"
        ),
    ],
)
def test_paths_print_like_structured_merge_diff(path: tuple[str, ...], text: str) -> None:
    assert ssa.format_path(path) == text


def test_merge_keeps_live_only_items_in_place_and_config_order_for_shared() -> None:
    shape = deployment_shape()
    live = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "a"}, {"name": "x"}, {"name": "b"}]}}
        }
    }
    cfg = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "b"}, {"name": "a"}, {"name": "c"}]}}
        }
    }
    merged = ssa.merge(live, cfg, shape)
    assert [c["name"] for c in merged["spec"]["template"]["spec"]["containers"]] == [
        "b",
        "a",
        "x",
        "c",
    ]


def test_apply_prunes_only_fields_nobody_owns() -> None:
    shape = deployment_shape()
    now = "2026-01-01T00:00:00Z"
    scope = ssa.Scope(ignored=ssa.STRIPPED)
    live: dict = {"metadata": {"name": "d"}}
    cfg1 = {"metadata": {"labels": {"a": "1", "b": "2"}}}
    obj, entries = ssa.apply(live, cfg1, shape, [], "m", "apps/v1", "", False, scope, now)
    obj2, entries2 = ssa.apply(
        obj,
        {"metadata": {"labels": {"b": "2"}}},
        shape,
        entries,
        "n",
        "apps/v1",
        "",
        False,
        scope,
        now,
    )
    obj3, _ = ssa.apply(
        obj2, {"metadata": {}}, shape, entries2, "m", "apps/v1", "", False, scope, now
    )
    assert obj3["metadata"]["labels"] == {"b": "2"}


def test_conflict_lists_every_field_sorted_by_manager() -> None:
    e = ssa.Entry("x", "Update", "apps/v1", "", "", set())
    err = ssa.ApplyConflict([(e, ("f:spec", "f:a")), (e, ("f:spec", "f:b"))])
    assert err.message == (
        'Apply failed with 2 conflicts: conflicts with "x" using apps/v1:\n- .spec.a\n- .spec.b'
    )


def test_every_required_builtin_kind_has_a_schema() -> None:
    required = {
        "Namespace",
        "ConfigMap",
        "Secret",
        "Service",
        "ServiceAccount",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "Job",
        "CronJob",
        "Pod",
        "Ingress",
        "HorizontalPodAutoscaler",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "PersistentVolumeClaim",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "CustomResourceDefinition",
    }
    served = {rt.kind: rt for rt in builtin_types() if not rt.virtual}
    assert required <= set(served)
    for kind in required:
        rt = served[kind]
        assert builtin_shape(rt.group, rt.version, rt.kind) is not None, kind


def test_pruning_keeps_an_item_and_its_key_while_another_manager_owns_part_of_it() -> None:
    shape = deployment_shape()
    now = "2026-01-01T00:00:00Z"
    scope = ssa.Scope(ignored=ssa.STRIPPED)
    containers = {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x:1"}]}}}}
    obj, entries = ssa.apply(
        {"metadata": {}}, containers, shape, [], "m", "apps/v1", "", False, scope, now
    )
    env = {
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "a", "env": [{"name": "E", "value": "1"}]}]}
            }
        }
    }
    obj, entries = ssa.apply(obj, env, shape, entries, "n", "apps/v1", "", False, scope, now)
    obj, _ = ssa.apply(obj, {"spec": {}}, shape, entries, "m", "apps/v1", "", False, scope, now)
    assert obj["spec"]["template"]["spec"]["containers"] == [
        {"name": "a", "env": [{"name": "E", "value": "1"}]}
    ]
