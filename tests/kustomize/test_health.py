"""Health of applied objects: kstatus rules per kind, toolkit kinds and CEL
`healthCheckExprs`."""

from __future__ import annotations

from typing import Any

import pytest

from fluxbus_kustomize.logic.health import (
    HealthCheckExpr,
    HealthCheckExprError,
    Status,
    check_health,
    compute_status,
)

C, P, F = Status.CURRENT, Status.IN_PROGRESS, Status.FAILED


def cond(ctype: str, status: str, reason: str = "", message: str = "") -> dict[str, str]:
    return {"type": ctype, "status": status, "reason": reason, "message": message}


def make(
    api_version: str, kind: str, spec: Any = None, status: Any = None, generation: int = 1
) -> dict:
    o: dict[str, Any] = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "x", "generation": generation},
    }
    if spec is not None:
        o["spec"] = spec
    if status is not None:
        o["status"] = status
    return o


def deploy(status: dict, replicas: int = 2, generation: int = 1) -> dict:
    return make("apps/v1", "Deployment", {"replicas": replicas}, status, generation)


HEALTHY_DEPLOY = {
    "observedGeneration": 1,
    "replicas": 2,
    "updatedReplicas": 2,
    "readyReplicas": 2,
    "availableReplicas": 2,
    "conditions": [
        cond("Available", "True", "MinimumReplicasAvailable"),
        cond("Progressing", "True", "NewReplicaSetAvailable"),
    ],
}

CASES = [
    # Deployment
    pytest.param(deploy(HEALTHY_DEPLOY), C, "Deployment is available", id="deployment-available"),
    pytest.param(
        deploy(HEALTHY_DEPLOY, generation=2),
        P,
        "observed generation",
        id="deployment-old-generation",
    ),
    pytest.param(
        deploy({**HEALTHY_DEPLOY, "updatedReplicas": 1}),
        P,
        "Updated: 1/2",
        id="deployment-updating",
    ),
    pytest.param(
        deploy({**HEALTHY_DEPLOY, "availableReplicas": 1}),
        P,
        "Available: 1/2",
        id="deployment-unavailable",
    ),
    pytest.param(
        deploy({**HEALTHY_DEPLOY, "replicas": 3}),
        P,
        "Pending termination",
        id="deployment-terminating",
    ),
    pytest.param(
        deploy({**HEALTHY_DEPLOY, "readyReplicas": 0}), P, "Ready: 0/2", id="deployment-not-ready"
    ),
    pytest.param(
        deploy({**HEALTHY_DEPLOY, "replicas": 0, "updatedReplicas": 0}),
        P,
        "Replicas: 0/2",
        id="deployment-scaling",
    ),
    pytest.param(
        deploy(
            {
                **HEALTHY_DEPLOY,
                "conditions": [
                    cond("Available", "True"),
                    cond("Progressing", "False", "ProgressDeadlineExceeded", "took too long"),
                ],
            }
        ),
        F,
        "Progress deadline exceeded",
        id="deployment-deadline-exceeded",
    ),
    pytest.param(
        deploy(
            {
                **HEALTHY_DEPLOY,
                "conditions": [cond("Progressing", "True", "NewReplicaSetAvailable")],
            }
        ),
        P,
        "Deployment not Available",
        id="deployment-no-available-condition",
    ),
    # StatefulSet
    pytest.param(
        make(
            "apps/v1",
            "StatefulSet",
            {"replicas": 2},
            {
                "observedGeneration": 1,
                "replicas": 2,
                "readyReplicas": 2,
                "currentReplicas": 2,
                "updatedReplicas": 2,
                "currentRevision": "r1",
                "updateRevision": "r1",
            },
        ),
        C,
        "",
        id="statefulset-ready",
    ),
    pytest.param(
        make(
            "apps/v1",
            "StatefulSet",
            {"replicas": 2},
            {"observedGeneration": 1, "replicas": 2, "readyReplicas": 1},
        ),
        P,
        "Ready: 1/2",
        id="statefulset-not-ready",
    ),
    pytest.param(
        make(
            "apps/v1",
            "StatefulSet",
            {"replicas": 2},
            {
                "observedGeneration": 1,
                "replicas": 2,
                "readyReplicas": 2,
                "currentReplicas": 2,
                "currentRevision": "r1",
                "updateRevision": "r2",
            },
        ),
        P,
        "update revision",
        id="statefulset-rolling",
    ),
    # DaemonSet
    pytest.param(
        make(
            "apps/v1",
            "DaemonSet",
            {},
            {
                "observedGeneration": 1,
                "desiredNumberScheduled": 3,
                "currentNumberScheduled": 3,
                "updatedNumberScheduled": 3,
                "numberAvailable": 3,
                "numberReady": 3,
            },
        ),
        C,
        "",
        id="daemonset-ready",
    ),
    pytest.param(
        make(
            "apps/v1",
            "DaemonSet",
            {},
            {
                "observedGeneration": 1,
                "desiredNumberScheduled": 3,
                "currentNumberScheduled": 3,
                "updatedNumberScheduled": 2,
                "numberAvailable": 3,
                "numberReady": 3,
            },
        ),
        P,
        "Updated: 2/3",
        id="daemonset-updating",
    ),
    # ReplicaSet
    pytest.param(
        make(
            "apps/v1",
            "ReplicaSet",
            {"replicas": 1},
            {
                "observedGeneration": 1,
                "replicas": 1,
                "fullyLabeledReplicas": 1,
                "availableReplicas": 1,
                "readyReplicas": 1,
            },
        ),
        C,
        "",
        id="replicaset-ready",
    ),
    pytest.param(
        make(
            "apps/v1",
            "ReplicaSet",
            {"replicas": 1},
            {"conditions": [cond("ReplicaFailure", "True")]},
        ),
        P,
        "Replica Failure",
        id="replicaset-failure",
    ),
    # Job
    pytest.param(
        make("batch/v1", "Job", {}, {"succeeded": 1, "conditions": [cond("Complete", "True")]}),
        C,
        "Job Completed",
        id="job-complete",
    ),
    pytest.param(
        make("batch/v1", "Job", {}, {"failed": 3, "conditions": [cond("Failed", "True")]}),
        F,
        "Job Failed",
        id="job-failed",
    ),
    pytest.param(
        make("batch/v1", "Job", {}, {"startTime": "2024-01-01T00:00:00Z", "active": 1}),
        P,
        "Job in progress",
        id="job-running",
    ),
    pytest.param(make("batch/v1", "Job", {}, {}), P, "Job not started", id="job-not-started"),
    # PVC, Service, CRD, Namespace, Pod
    pytest.param(
        make("v1", "PersistentVolumeClaim", {}, {"phase": "Bound"}), C, "Bound", id="pvc-bound"
    ),
    pytest.param(
        make("v1", "PersistentVolumeClaim", {}, {"phase": "Pending"}),
        P,
        "not Bound",
        id="pvc-pending",
    ),
    pytest.param(make("v1", "Service", {"type": "ClusterIP"}, {}), C, "", id="service-clusterip"),
    pytest.param(
        make("v1", "Service", {"type": "LoadBalancer"}, {"loadBalancer": {}}),
        P,
        "load balancer",
        id="service-lb-pending",
    ),
    pytest.param(
        make(
            "v1",
            "Service",
            {"type": "LoadBalancer"},
            {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}},
        ),
        C,
        "",
        id="service-lb-ready",
    ),
    pytest.param(
        make(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            {},
            {"conditions": [cond("Established", "True")]},
        ),
        C,
        "established",
        id="crd-established",
    ),
    pytest.param(
        make("apiextensions.k8s.io/v1", "CustomResourceDefinition", {}, {"conditions": []}),
        P,
        "Install in progress",
        id="crd-installing",
    ),
    pytest.param(
        make(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            {},
            {"conditions": [cond("NamesAccepted", "False", message="conflict")]},
        ),
        F,
        "conflict",
        id="crd-names-rejected",
    ),
    pytest.param(make("v1", "Namespace", None, {"phase": "Active"}), C, "", id="namespace-active"),
    pytest.param(
        make("v1", "Namespace", None, {"phase": "Terminating"}),
        P,
        "terminating",
        id="namespace-terminating",
    ),
    pytest.param(
        make("v1", "Pod", {}, {"phase": "Running", "conditions": [cond("Ready", "True")]}),
        C,
        "Ready",
        id="pod-ready",
    ),
    pytest.param(make("v1", "Pod", {}, {"phase": "Pending"}), P, "Pending", id="pod-pending"),
    pytest.param(make("v1", "Pod", {}, {"phase": "Succeeded"}), C, "completed", id="pod-succeeded"),
    pytest.param(
        make("v1", "Pod", {}, {"phase": "Failed"}), F, "not successfully", id="pod-failed"
    ),
    pytest.param(
        make(
            "v1",
            "Pod",
            {},
            {
                "phase": "Running",
                "containerStatuses": [
                    {"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
                ],
            },
        ),
        F,
        "CrashLoopBackOff",
        id="pod-crashloop",
    ),
    # generic objects
    pytest.param(make("v1", "ConfigMap"), C, "", id="configmap-without-status"),
    pytest.param(
        make("example.com/v1", "Widget", {}, {"conditions": [cond("Ready", "True")]}),
        C,
        "",
        id="custom-ready",
    ),
    pytest.param(
        make(
            "example.com/v1",
            "Widget",
            {},
            {"conditions": [cond("Ready", "False", message="waiting")]},
        ),
        P,
        "waiting",
        id="custom-not-ready",
    ),
    pytest.param(
        make(
            "example.com/v1",
            "Widget",
            {},
            {"conditions": [cond("Stalled", "True", message="broken")]},
        ),
        F,
        "broken",
        id="custom-stalled",
    ),
    pytest.param(
        make(
            "example.com/v1",
            "Widget",
            {},
            {"conditions": [cond("Reconciling", "True", message="working")]},
        ),
        P,
        "working",
        id="custom-reconciling",
    ),
    # toolkit kinds
    pytest.param(
        make(
            "source.toolkit.fluxcd.io/v1",
            "GitRepository",
            {},
            {
                "observedGeneration": 3,
                "conditions": [cond("Ready", "True", message="stored artifact")],
            },
            generation=3,
        ),
        C,
        "stored artifact",
        id="toolkit-ready",
    ),
    pytest.param(
        make(
            "source.toolkit.fluxcd.io/v1",
            "GitRepository",
            {},
            {"observedGeneration": 2, "conditions": [cond("Ready", "True")]},
            generation=3,
        ),
        P,
        "observed generation",
        id="toolkit-stale-generation",
    ),
    pytest.param(
        make(
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            {},
            {
                "observedGeneration": 1,
                "conditions": [cond("Ready", "False", message="build failed")],
            },
        ),
        F,
        "build failed",
        id="toolkit-not-ready",
    ),
    pytest.param(
        make("kustomize.toolkit.fluxcd.io/v1", "Kustomization", {}, {}),
        P,
        "first reconciliation",
        id="toolkit-new",
    ),
    pytest.param(
        make("kustomize.toolkit.fluxcd.io/v1", "Kustomization", {}, {"observedGeneration": 1}),
        P,
        "Ready condition not set",
        id="toolkit-without-ready",
    ),
]


@pytest.mark.parametrize(("o", "status", "message"), CASES)
def test_kstatus_rules(o: dict, status: Status, message: str) -> None:
    result = compute_status(o)
    assert result.status is status, result.message
    assert message in result.message


SEALED = {
    "apiVersion": "bitnami.com/v1alpha1",
    "kind": "SealedSecret",
    "failed": "status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'False')",
    "current": "status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'True')",
}


def sealed(status: Any, generation: int = 1) -> dict:
    return make("bitnami.com/v1alpha1", "SealedSecret", {}, status, generation)


@pytest.mark.parametrize(
    ("o", "status"),
    [
        pytest.param(
            sealed({"observedGeneration": 1, "conditions": [cond("Synced", "True")]}),
            C,
            id="current",
        ),
        pytest.param(
            sealed({"observedGeneration": 1, "conditions": [cond("Synced", "False")]}),
            F,
            id="failed",
        ),
        pytest.param(
            sealed({"observedGeneration": 1, "conditions": [cond("Synced", "True")]}, generation=2),
            P,
            id="old-generation",
        ),
        pytest.param(sealed(None), P, id="missing-field-waits"),
    ],
)
def test_health_check_exprs_decide_for_their_kind(o: dict, status: Status) -> None:
    expr = HealthCheckExpr.from_spec(SEALED)
    assert check_health(o, [expr]).status is status


def test_in_progress_is_evaluated_before_failed_and_current() -> None:
    expr = HealthCheckExpr.from_spec({**SEALED, "inProgress": "has(status.conditions)"})
    o = sealed({"conditions": [cond("Synced", "True")]})
    assert check_health(o, [expr]).status is P


def test_no_true_expression_means_in_progress() -> None:
    expr = HealthCheckExpr.from_spec({**SEALED, "current": "false"})
    assert check_health(sealed({"conditions": [cond("Synced", "Unknown")]}), [expr]).status is P


def test_other_kinds_keep_the_kstatus_rules() -> None:
    expr = HealthCheckExpr.from_spec({**SEALED, "current": "false"})
    assert check_health(make("v1", "ConfigMap"), [expr]).status is C


def test_an_expression_that_does_not_compile_is_rejected() -> None:
    with pytest.raises(HealthCheckExprError, match="Current"):
        HealthCheckExpr.from_spec({**SEALED, "current": "status.("})


def test_current_is_required() -> None:
    with pytest.raises(HealthCheckExprError, match="current is required"):
        HealthCheckExpr.from_spec({"apiVersion": "a/v1", "kind": "K"})
