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
