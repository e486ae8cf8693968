"""The kustomize service's reconcilers: one per kind (Kustomization)."""

from fluxbus_kustomize.reconcilers.kustomization import KustomizationReconciler, KustomizeState

__all__ = ["KustomizationReconciler", "KustomizeState"]
