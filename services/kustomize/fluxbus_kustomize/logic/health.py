"""Health of applied objects: kstatus rules and Flux's CEL `healthCheckExprs`.

`compute_status(obj)` follows kstatus (sigs.k8s.io/cli-utils/pkg/kstatus):
`Current` (reconciled and ready), `InProgress` (still rolling out) or `Failed`
(will not get there without a change), with a message saying why. Built-in
rules: Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, PVC, Service, CRD,
Namespace and Pod; Flux toolkit kinds (`*.toolkit.fluxcd.io`: Ready=True at the
current generation); every other object by its `Reconciling`/`Stalled`/`Ready`
conditions, and Current when it has no status conditions at all.

`HealthCheckExpr` evaluates Flux's `spec.healthCheckExprs` with the one CEL
environment (`fluxbus_common.cel`), in Flux's order: generation check, then `inProgress`, `failed`, `current`; none
true means InProgress. A CEL evaluation error (for example a missing field)
counts as false, so the object waits, as in Flux.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fluxbus_common import cel
from fluxbus_kube.logic.ordering import group_of


class Status(StrEnum):
    """kstatus statuses used by fluxbus."""

    CURRENT = "Current"
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"


@dataclass(frozen=True)
class HealthResult:
    """The health of one object."""

    status: Status
    message: str = ""


def _current(msg: str = "Resource is current") -> HealthResult:
    return HealthResult(Status.CURRENT, msg)


def _progress(msg: str) -> HealthResult:
    return HealthResult(Status.IN_PROGRESS, msg)


def _failed(msg: str) -> HealthResult:
    return HealthResult(Status.FAILED, msg)


def _conditions(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    status = obj.get("status") or {}
    out: dict[str, Mapping[str, Any]] = {}
    for cond in status.get("conditions") or []:
        if isinstance(cond, Mapping) and "type" in cond:
            out[str(cond["type"])] = cond
    return out


def _cond_is(conds: Mapping[str, Mapping[str, Any]], ctype: str, status: str) -> bool:
    cond = conds.get(ctype)
    return cond is not None and str(cond.get("status")) == status


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _generation_pending(obj: Mapping[str, Any]) -> HealthResult | None:
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and _int(observed) != _int(generation):
        return _progress(
            f"{obj.get('kind')} generation is {generation}, but latest observed generation is {observed}"
        )
    return None


def _generic(obj: Mapping[str, Any]) -> HealthResult | None:
    """kstatus's checks shared by every kind (None when they say nothing)."""
    pending = _generation_pending(obj)
    if pending:
        return pending
    conds = _conditions(obj)
    if _cond_is(conds, "Reconciling", "True"):
        return _progress(str(conds["Reconciling"].get("message") or "Reconciling"))
    if _cond_is(conds, "Stalled", "True"):
        return _failed(str(conds["Stalled"].get("message") or "Stalled"))
    return None


def _deployment(obj: Mapping[str, Any]) -> HealthResult:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = _int(spec.get("replicas"), 1)
    replicas = _int(status.get("replicas"))
    updated = _int(status.get("updatedReplicas"))
    available = _int(status.get("availableReplicas"))
    ready = _int(status.get("readyReplicas"))
    progressing = available_cond = False
    for ctype, cond in _conditions(obj).items():
        if ctype == "Progressing":
            if cond.get("reason") == "ProgressDeadlineExceeded":
                return _failed(f"Progress deadline exceeded: {cond.get('message', '')}".strip())
            if cond.get("status") == "True" and cond.get("reason") == "NewReplicaSetAvailable":
                progressing = True
        elif ctype == "Available" and cond.get("status") == "True":
            available_cond = True
    if desired > replicas:
        return _progress(f"Replicas: {replicas}/{desired}")
    if desired > updated:
        return _progress(f"Updated: {updated}/{desired}")
    if replicas > desired:
        return _progress(f"Pending termination: {replicas - desired}")
    if updated > available:
        return _progress(f"Available: {available}/{updated}")
    if desired > ready:
        return _progress(f"Ready: {ready}/{desired}")
    if desired > 0 and not progressing:
        return _progress("ReplicaSet not Available")
    if desired > 0 and not available_cond:
        return _progress("Deployment not Available")
    return _current(f"Deployment is available. Replicas: {replicas}")


def _statefulset(obj: Mapping[str, Any]) -> HealthResult:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type") == "OnDelete":
        return _current("StatefulSet is using the OnDelete update strategy")
    desired = _int(spec.get("replicas"), 1)
    replicas = _int(status.get("replicas"))
    ready = _int(status.get("readyReplicas"))
    current = _int(status.get("currentReplicas"))
    updated = _int(status.get("updatedReplicas"))
    if desired > replicas:
        return _progress(f"Replicas: {replicas}/{desired}")
    if desired > ready:
        return _progress(f"Ready: {ready}/{desired}")
    partition = (strategy.get("rollingUpdate") or {}).get("partition")
    if partition is not None:
        expected = max(desired - _int(partition), 0)
        if updated < expected:
            return _progress(f"Partitioned roll out in progress: updated {updated}/{expected}")
        return _current(f"Partitioned roll out complete. updated: {updated}")
    if desired > current:
        return _progress(f"Current: {current}/{desired}")
    if status.get("currentRevision") != status.get("updateRevision"):
        return _progress("Waiting for the update revision to become current")
    return _current(f"All replicas scheduled as expected. Replicas: {replicas}")


def _daemonset(obj: Mapping[str, Any]) -> HealthResult:
    status = obj.get("status") or {}
    if "desiredNumberScheduled" not in status:
        return _progress("Missing .status.desiredNumberScheduled")
    desired = _int(status.get("desiredNumberScheduled"))
    for key, label in (
        ("currentNumberScheduled", "Current"),
        ("updatedNumberScheduled", "Updated"),
        ("numberAvailable", "Available"),
        ("numberReady", "Ready"),
    ):
        have = _int(status.get(key))
        if desired > have:
            return _progress(f"{label}: {have}/{desired}")
    return _current(f"All replicas scheduled as expected. Replicas: {desired}")


def _replicaset(obj: Mapping[str, Any]) -> HealthResult:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if _cond_is(_conditions(obj), "ReplicaFailure", "True"):
        return _progress("Replica Failure condition. Check Pods")
    desired = _int(spec.get("replicas"), 1)
    for key, label in (
        ("fullyLabeledReplicas", "Labelled"),
        ("availableReplicas", "Available"),
        ("readyReplicas", "Ready"),
    ):
        have = _int(status.get(key))
        if desired > have:
            return _progress(f"{label}: {have}/{desired}")
    if _int(status.get("replicas")) > desired:
        return _progress("Pending termination")
    return _current(f"ReplicaSet is available. Replicas: {desired}")


def _job(obj: Mapping[str, Any]) -> HealthResult:
    status = obj.get("status") or {}
    conds = _conditions(obj)
    if _cond_is(conds, "Failed", "True"):
        return _failed(f"Job Failed. failed: {_int(status.get('failed'))}")
    if _cond_is(conds, "Complete", "True"):
        return _current(f"Job Completed. succeeded: {_int(status.get('succeeded'))}")
    if "startTime" not in status:
        return _progress("Job not started")
    return _progress(
        f"Job in progress. success:{_int(status.get('succeeded'))}, "
        f"active: {_int(status.get('active'))}, failed: {_int(status.get('failed'))}"
    )


def _pvc(obj: Mapping[str, Any]) -> HealthResult:
    phase = (obj.get("status") or {}).get("phase")
    if phase != "Bound":
        return _progress(f"PVC is not Bound. phase: {phase}")
    return _current("PVC is Bound")


def _service(obj: Mapping[str, Any]) -> HealthResult:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if spec.get("type") == "LoadBalancer":
        ingress = (status.get("loadBalancer") or {}).get("ingress") or []
        if not ingress:
            return _progress("Waiting for the load balancer ingress")
    return _current("Service is ready")


def _crd(obj: Mapping[str, Any]) -> HealthResult:
    conds = _conditions(obj)
    if _cond_is(conds, "NamesAccepted", "False"):
        return _failed(str(conds["NamesAccepted"].get("message") or "CRD names not accepted"))
    if _cond_is(conds, "Established", "True"):
        return _current("CRD is established")
    return _progress("Install in progress")


def _namespace(obj: Mapping[str, Any]) -> HealthResult:
    phase = (obj.get("status") or {}).get("phase")
    if phase == "Terminating":
        return _progress("Namespace is terminating")
    return _current("Namespace is active")


def _pod(obj: Mapping[str, Any]) -> HealthResult:
    status = obj.get("status") or {}
    phase = status.get("phase")
    conds = _conditions(obj)
    if phase == "Succeeded":
        return _current("Pod has completed successfully")
    if phase == "Failed":
        return _failed("Pod has completed, but not successfully")
    for cs in status.get("containerStatuses") or []:
        waiting = ((cs or {}).get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull"):
            return _failed(f"Pod container {cs.get('name')} is {waiting['reason']}")
    if phase == "Running" and _cond_is(conds, "Ready", "True"):
        return _current("Pod is Ready")
    if _cond_is(conds, "PodScheduled", "False"):
        return _progress(str(conds["PodScheduled"].get("message") or "Pod has not been scheduled"))
    return _progress(f"Pod phase is {phase}, not ready")


def _toolkit(obj: Mapping[str, Any]) -> HealthResult:
    generation = (obj.get("metadata") or {}).get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    if generation is not None and observed is None:
        return _progress("Waiting for the first reconciliation")
    conds = _conditions(obj)
    ready = conds.get("Ready")
    if ready is None:
        return _progress("Ready condition not set")
    message = str(ready.get("message") or "")
    if ready.get("status") == "True":
        return _current(message or "Ready")
    if ready.get("status") == "False":
        return _failed(message or "not Ready")
    return _progress(message or "Reconciling")


def _conditions_only(obj: Mapping[str, Any]) -> HealthResult:
    conds = _conditions(obj)
    if "Ready" in conds:
        if _cond_is(conds, "Ready", "True"):
            return _current(str(conds["Ready"].get("message") or "Ready"))
        return _progress(str(conds["Ready"].get("message") or "Ready condition is not True"))
    return _current()


_BUILTIN: dict[tuple[str, str], Callable[[Mapping[str, Any]], HealthResult]] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("apps", "ReplicaSet"): _replicaset,
    ("batch", "Job"): _job,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "Service"): _service,
    ("", "Namespace"): _namespace,
    ("", "Pod"): _pod,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}


def is_toolkit_kind(obj: Mapping[str, Any]) -> bool:
    """Return whether the object is a Flux (GitOps Toolkit) object."""
    return group_of(str(obj.get("apiVersion", ""))).endswith(".toolkit.fluxcd.io")


def compute_status(obj: Mapping[str, Any]) -> HealthResult:
    """Return the kstatus health of a live object."""
    generic = _generic(obj)
    if generic is not None:
        return generic
    key = (group_of(str(obj.get("apiVersion", ""))), str(obj.get("kind", "")))
    rule = _BUILTIN.get(key)
    if rule is not None:
        return rule(obj)
    if is_toolkit_kind(obj):
        return _toolkit(obj)
    return _conditions_only(obj)


# --------------------------------------------------------------------------- CEL


class HealthCheckExprError(ValueError):
    """A `healthCheckExprs` expression does not compile."""


def _compile(source: str | None, what: str) -> cel.Program | None:
    if not source:
        return None
    try:
        return cel.compile_program(source)
    except cel.CelError as e:
        raise HealthCheckExprError(f"failed to parse the expression {what}: {e}") from None


@dataclass(frozen=True)
class HealthCheckExpr:
    """One `spec.healthCheckExprs[]` item, compiled once."""

    api_version: str
    kind: str
    current: str
    in_progress: str | None = None
    failed: str | None = None
    _programs: tuple[Any, Any, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.current:
            raise HealthCheckExprError(f"{self.api_version}/{self.kind}: current is required")
        programs = (
            _compile(self.in_progress, "InProgress"),
            _compile(self.failed, "Failed"),
            _compile(self.current, "Current"),
        )
        object.__setattr__(self, "_programs", programs)

    @classmethod
    def from_spec(cls, item: Mapping[str, Any]) -> HealthCheckExpr:
        """Build from the camelCase spec dict (`apiVersion`, `kind`, `current`, …)."""
        return cls(
            api_version=str(item["apiVersion"]),
            kind=str(item["kind"]),
            current=str(item.get("current") or ""),
            in_progress=item.get("inProgress") or None,
            failed=item.get("failed") or None,
        )

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Return whether this expression set is for the object's apiVersion and kind."""
        return obj.get("apiVersion") == self.api_version and obj.get("kind") == self.kind

    def evaluate(self, obj: Mapping[str, Any]) -> HealthResult:
        """Return the object's health per these expressions."""
        pending = _generation_pending(obj)
        if pending:
            return pending
        activation = cel.activation(obj)
        for program, status in zip(
            self._programs, (Status.IN_PROGRESS, Status.FAILED, Status.CURRENT), strict=True
        ):
            if program is not None and cel.evaluate_bool(program, activation):
                return HealthResult(status, f"healthCheckExprs: {status} expression is true")
        return _progress("healthCheckExprs: no expression is true yet")


def check_health(obj: Mapping[str, Any], exprs: Sequence[HealthCheckExpr] = ()) -> HealthResult:
    """Return the object's health: its `healthCheckExprs` entry when one matches,
    else the kstatus rules."""
    for expr in exprs:
        if expr.matches(obj):
            return expr.evaluate(obj)
    return compute_status(obj)
