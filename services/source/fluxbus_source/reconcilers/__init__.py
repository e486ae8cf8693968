"""The source service's reconcilers: one module per kind (GitRepository, HelmRepository,
HelmChart), the storage steps they share, and the chart builders."""

from __future__ import annotations

from fluxbus_source.reconcilers.gitrepository import GitRepositoryReconciler, SourceState
from fluxbus_source.reconcilers.helmchart import HelmChartReconciler, HelmChartState
from fluxbus_source.reconcilers.helmrepository import (
    HelmRepositoryReconciler,
    HelmRepositoryState,
)

__all__ = [
    "GitRepositoryReconciler",
    "HelmChartReconciler",
    "HelmChartState",
    "HelmRepositoryReconciler",
    "HelmRepositoryState",
    "SourceState",
]
