"""AlertReconciler: an Alert's Ready condition.

Flux's v1beta3 Alert is a static object without conditions; fluxbus reports
there what Flux only logs or raises as warning events:
1. `reconcile_patterns` — every inclusionList/exclusionList entry compiles
   (Stalled, InvalidConfig, until the spec changes; an invalid pattern never
   matches, as in Flux);
2. `reconcile_provider` — the Provider it names exists in its namespace
   (Ready=False, ProviderNotFound, until it does: a Provider watch re-runs the
   Alert when it appears). Ready=True reads "Initialized", as Flux's
v1beta2 Alert did. Delivery failures are warning events on the Alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from fluxbus_common import subjects
from fluxbus_common.api.notification import Alert
from fluxbus_common.conditions import Reason
from fluxbus_common.errors import Stalling
from fluxbus_common.ports import ObjectStore
from fluxbus_common.reconcile import DependencyWatch, Result, Step, StepReconciler
from fluxbus_notifier.errors import ProviderNotFound
from fluxbus_notifier.logic.matching import invalid_patterns
from fluxbus_notifier.reconcilers.provider import DEFAULT_INTERVAL, READY_MESSAGE


@dataclass
class AlertState:
    """What the Alert steps hand each other (nothing yet beyond the object)."""


def _alerts_of(key: str, _: Any, alerts: Mapping[str, dict[str, Any]]) -> Iterable[str]:
    """The Alerts naming the Provider that changed (same namespace)."""
    _, namespace, name = subjects.split_object_key(key)
    for alert_key, doc in alerts.items():
        meta = doc.get("metadata") or {}
        ref = (doc.get("spec") or {}).get("providerRef") or {}
        if meta.get("namespace", "default") == namespace and ref.get("name") == name:
            yield alert_key


class AlertReconciler(StepReconciler[Alert, AlertState]):
    """Checks that an Alert's Provider exists."""

    kind: ClassVar[str] = "Alert"
    watches = (DependencyWatch(kind="Provider", map=_alerts_of, source="objects"),)

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def parse(self, doc: dict[str, Any]) -> Alert:
        return Alert.model_validate(doc)

    def interval(self, obj: Alert) -> float:
        return DEFAULT_INTERVAL

    def new_state(self, obj: Alert) -> AlertState:
        return AlertState()

    def steps(self) -> tuple[Step[Alert, AlertState], ...]:
        return (self.reconcile_patterns, self.reconcile_provider)

    async def reconcile_patterns(self, obj: Alert, state: AlertState) -> None:
        """Raise Stalling when an inclusion or exclusion pattern is not a valid regex."""
        bad = invalid_patterns(obj)
        if bad:
            listed = ", ".join(f"'{p}'" for p in bad)
            raise Stalling(
                f"invalid regular expression in inclusionList/exclusionList: {listed}",
                Reason.INVALID_CONFIG,
            )

    async def reconcile_provider(self, obj: Alert, state: AlertState) -> Result:
        """Raise ProviderNotFound while the providerRef names no Provider."""
        ns = obj.metadata.namespace
        name = obj.spec.provider_ref.name
        if await self.store.get_object(subjects.object_key("Provider", ns, name)) is None:
            raise ProviderNotFound(f"provider {ns}/{name} not found (spec.providerRef)")
        return Result(ready_reason=Reason.SUCCEEDED, ready_message=READY_MESSAGE)
