"""Label and annotation keys, Flux's own spelling. Pure: no I/O."""

from __future__ import annotations

RECONCILE_REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
"""Manual reconcile: the owner copies the value to status.lastHandledReconcileAt."""
FORCE_REQUESTED_AT = "reconcile.fluxcd.io/forceAt"

KUSTOMIZE_NAME_LABEL = "kustomize.toolkit.fluxcd.io/name"
KUSTOMIZE_NAMESPACE_LABEL = "kustomize.toolkit.fluxcd.io/namespace"
KUSTOMIZE_SSA = "kustomize.toolkit.fluxcd.io/ssa"
KUSTOMIZE_RECONCILE = "kustomize.toolkit.fluxcd.io/reconcile"
KUSTOMIZE_PRUNE = "kustomize.toolkit.fluxcd.io/prune"
KUSTOMIZE_FORCE = "kustomize.toolkit.fluxcd.io/force"
KUSTOMIZE_SUBSTITUTE = "kustomize.toolkit.fluxcd.io/substitute"

DISABLED = "disabled"
ENABLED = "enabled"

SUSPENDED_REASON_ANNOTATION = "fluxbus.io/suspend-reason"
"""Why an object was suspended (`fluxbus suspend --reason`)."""

FIELD_MANAGER = "fluxbus"
"""Server-side apply field manager of the kustomize service."""
FINALIZER = "finalizers.fluxcd.io"

NOTIFY_ANNOTATION = "fluxbus.io/notify"
"""An Alert's noise control: `on-change` sends a failure once, then one "resolved"."""
NOTIFY_ON_CHANGE = "on-change"

DRIFT_ANNOTATION = "fluxbus.io/drift"
"""`report` on a Kustomization: detect and report drift (condition Drifted) but do
not correct it (Argo CD's `selfHeal: false`)."""
DRIFT_REPORT = "report"
CREATE_NAMESPACE_ANNOTATION = "fluxbus.io/create-namespace"
"""`"true"` on a Kustomization: create `spec.targetNamespace` when it is missing."""
CREATED_BY_LABEL = "fluxbus.io/created-by"
"""On a Namespace fluxbus created for a Kustomization (value: `create-namespace`)."""
ROLLBACK_ANNOTATION = "fluxbus.io/rollback-to"
"""On a Kustomization: apply the history entry with this digest instead of Git
(`fluxbus rollback`; removed by `fluxbus resume`)."""
