"""The source service's reconcilers: one module per kind (GitRepository today)."""

from __future__ import annotations

from fluxbus_source.reconcilers.gitrepository import GitRepositoryReconciler, SourceState

__all__ = ["GitRepositoryReconciler", "SourceState"]
