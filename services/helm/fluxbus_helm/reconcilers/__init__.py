"""The helm service's reconcilers."""

from fluxbus_helm.reconcilers.helmrelease import HelmReleaseReconciler, HelmState

__all__ = ["HelmReleaseReconciler", "HelmState"]
