"""The notifier service's reconcilers: one `StepReconciler[Kind, KindState]` per kind
(Provider, Alert and Receiver), each in a module of its own."""

from __future__ import annotations

from fluxbus_notifier.reconcilers.alert import AlertReconciler, AlertState
from fluxbus_notifier.reconcilers.provider import ProviderReconciler, ProviderState

__all__ = ["AlertReconciler", "AlertState", "ProviderReconciler", "ProviderState"]
