"""Flux's apply stages and kind order, and the per-object apply policies."""

from __future__ import annotations

import random

import pytest

from fluxbus_kube.logic.ordering import (
    Stage,
    apply_stages,
    delete_order,
    partition_toolkit,
    sort_objects,
    stage_of,
)
from fluxbus_kube.logic.policy import Action, SSAPolicy, apply_policy, may_prune


def obj(kind: str, name: str = "x", api_version: str = "v1", namespace: str | None = None) -> dict:
    meta: dict = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


@pytest.mark.parametrize(
    ("o", "stage"),
    [
        pytest.param(
            obj("CustomResourceDefinition", api_version="apiextensions.k8s.io/v1"),
            Stage.CLUSTER_DEFINITIONS,
            id="crd",
        ),
        pytest.param(obj("Namespace"), Stage.CLUSTER_DEFINITIONS, id="namespace"),
        pytest.param(
            obj("ClusterRole", api_version="rbac.authorization.k8s.io/v1"),
            Stage.CLUSTER_DEFINITIONS,
            id="clusterrole",
        ),
        pytest.param(
            obj("StorageClass", api_version="storage.k8s.io/v1"), Stage.CLASSES, id="storageclass"
        ),
        pytest.param(
            obj("IngressClass", api_version="networking.k8s.io/v1"),
            Stage.CLASSES,
            id="ingressclass",
        ),
        pytest.param(
            obj("GatewayClass", api_version="gateway.networking.k8s.io/v1"),
            Stage.CLASSES,
            id="gatewayclass",
        ),
        pytest.param(
            obj("ClusterRoleBinding", api_version="rbac.authorization.k8s.io/v1"),
            Stage.RESOURCES,
            id="clusterrolebinding",
        ),
        pytest.param(obj("Deployment", api_version="apps/v1"), Stage.RESOURCES, id="deployment"),
        pytest.param(
            obj("Namespace", api_version="example.com/v1"),
            Stage.RESOURCES,
            id="custom-namespace-kind",
        ),
    ],
)
def test_objects_fall_into_flux_apply_stages(o: dict, stage: Stage) -> None:
    assert stage_of(o) is stage


MIXED = [
    obj("ValidatingWebhookConfiguration", api_version="admissionregistration.k8s.io/v1"),
    obj("Widget", "w", api_version="example.com/v1", namespace="apps"),
    obj("Deployment", "b", api_version="apps/v1", namespace="apps"),
    obj("Deployment", "a", api_version="apps/v1", namespace="apps"),
    obj("Deployment", "a", api_version="apps/v1", namespace="aaa"),
    obj("Service", "svc", namespace="apps"),
    obj("ConfigMap", "cm", namespace="apps"),
    obj("Secret", "s", namespace="apps"),
    obj("ServiceAccount", "sa", namespace="apps"),
    obj("Namespace", "apps"),
    obj("CustomResourceDefinition", "widgets.example.com", api_version="apiextensions.k8s.io/v1"),
    obj("StorageClass", "fast", api_version="storage.k8s.io/v1"),
]


def describe(objects: list[dict]) -> list[str]:
    return [
        f"{o['kind']}/{o['metadata'].get('namespace', '')}/{o['metadata']['name']}" for o in objects
    ]


def test_objects_sort_in_flux_kind_order_then_namespace_and_name() -> None:
    assert describe(sort_objects(MIXED)) == [
        "CustomResourceDefinition//widgets.example.com",
        "Namespace//apps",
        "StorageClass//fast",
        "ServiceAccount/apps/sa",
        "ConfigMap/apps/cm",
        "Secret/apps/s",
        "Service/apps/svc",
        "Deployment/aaa/a",
        "Deployment/apps/a",
        "Deployment/apps/b",
        "Widget/apps/w",
        "ValidatingWebhookConfiguration//x",
    ]


def test_the_order_does_not_depend_on_the_input_order() -> None:
    shuffled = MIXED[:]
    random.Random(7).shuffle(shuffled)
    assert sort_objects(shuffled) == sort_objects(MIXED)


def test_stages_come_in_order_each_sorted() -> None:
    stages = apply_stages(MIXED)
    assert [s for s, _ in stages] == [Stage.CLUSTER_DEFINITIONS, Stage.CLASSES, Stage.RESOURCES]
    assert describe(stages[0][1]) == [
        "CustomResourceDefinition//widgets.example.com",
        "Namespace//apps",
    ]
    assert describe(stages[1][1]) == ["StorageClass//fast"]
    assert describe(stages[2][1])[0] == "ServiceAccount/apps/sa"


def test_empty_stages_are_left_out() -> None:
    assert [s for s, _ in apply_stages([obj("ConfigMap")])] == [Stage.RESOURCES]


def test_deletion_runs_in_reverse_apply_order() -> None:
    assert describe(delete_order(MIXED)) == list(reversed(describe(sort_objects(MIXED))))


# --------------------------------------------------------------------------- apply policy

SSA = "kustomize.toolkit.fluxcd.io/ssa"
RECONCILE = "kustomize.toolkit.fluxcd.io/reconcile"
FORCE = "kustomize.toolkit.fluxcd.io/force"
PRUNE = "kustomize.toolkit.fluxcd.io/prune"


def annotated(**annotations: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "annotations": annotations},
    }


def labelled(**labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": labels}}


LIVE = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}


@pytest.mark.parametrize(
    ("desired", "live", "action", "ssa"),
    [
        pytest.param(annotated(), None, Action.APPLY, SSAPolicy.OVERRIDE, id="default-override"),
        pytest.param(annotated(**{SSA: "Merge"}), LIVE, Action.APPLY, SSAPolicy.MERGE, id="merge"),
        pytest.param(
            annotated(**{SSA: "merge"}), LIVE, Action.APPLY, SSAPolicy.MERGE, id="merge-lower-case"
        ),
        pytest.param(
            annotated(**{SSA: "IfNotPresent"}),
            None,
            Action.APPLY,
            SSAPolicy.IF_NOT_PRESENT,
            id="if-not-present-absent",
        ),
        pytest.param(
            annotated(**{SSA: "IfNotPresent"}),
            LIVE,
            Action.SKIP,
            SSAPolicy.IF_NOT_PRESENT,
            id="if-not-present-exists",
        ),
        pytest.param(
            annotated(**{SSA: "Ignore"}), None, Action.SKIP, SSAPolicy.IGNORE, id="ignore"
        ),
        pytest.param(
            labelled(**{SSA: "Ignore"}), None, Action.SKIP, SSAPolicy.IGNORE, id="ignore-label"
        ),
        pytest.param(
            annotated(**{RECONCILE: "disabled"}),
            None,
            Action.SKIP,
            SSAPolicy.OVERRIDE,
            id="reconcile-disabled-in-git",
        ),
        pytest.param(
            annotated(),
            annotated(**{RECONCILE: "disabled"}),
            Action.SKIP,
            SSAPolicy.OVERRIDE,
            id="reconcile-disabled-in-cluster",
        ),
        pytest.param(
            annotated(**{SSA: "Bogus"}),
            None,
            Action.APPLY,
            SSAPolicy.OVERRIDE,
            id="unknown-value-is-override",
        ),
    ],
)
def test_apply_policy_follows_the_ssa_and_reconcile_annotations(
    desired: dict, live: dict | None, action: Action, ssa: SSAPolicy
) -> None:
    policy = apply_policy(desired, live)
    assert (policy.action, policy.ssa) == (action, ssa)
    assert policy.merge == (ssa is SSAPolicy.MERGE)
    assert bool(policy.reason) == (action is Action.SKIP)


@pytest.mark.parametrize(
    ("desired", "spec_force", "force"),
    [
        pytest.param(annotated(), False, False, id="off"),
        pytest.param(annotated(**{FORCE: "enabled"}), False, True, id="annotation"),
        pytest.param(annotated(**{FORCE: "Enabled"}), False, True, id="annotation-capitalised"),
        pytest.param(annotated(), True, True, id="spec-force"),
    ],
)
def test_force_comes_from_the_annotation_or_the_spec(
    desired: dict, spec_force: bool, force: bool
) -> None:
    assert apply_policy(desired, force=spec_force).force is force


@pytest.mark.parametrize(
    ("live", "prunable"),
    [
        pytest.param(LIVE, True, id="default"),
        pytest.param(annotated(**{PRUNE: "disabled"}), False, id="prune-disabled"),
        pytest.param(labelled(**{PRUNE: "Disabled"}), False, id="prune-disabled-label"),
        pytest.param(annotated(**{RECONCILE: "disabled"}), False, id="reconcile-disabled"),
        pytest.param(annotated(**{PRUNE: "enabled"}), True, id="prune-enabled"),
    ],
)
def test_prune_respects_the_live_objects_annotations(live: dict, prunable: bool) -> None:
    assert may_prune(live) is prunable


def test_toolkit_objects_are_split_from_cluster_objects() -> None:
    ks = obj(
        "Kustomization",
        "apps",
        api_version="kustomize.toolkit.fluxcd.io/v1",
        namespace="flux-system",
    )
    repo = obj(
        "GitRepository", "repo", api_version="source.toolkit.fluxcd.io/v1", namespace="flux-system"
    )
    plain = obj("Kustomization", "k", api_version="kustomize.config.k8s.io/v1beta1")
    cm = obj("ConfigMap", "cm", namespace="apps")
    assert partition_toolkit([ks, cm, repo, plain]) == ([ks, repo], [cm, plain])
