"""ProviderReconciler: a Provider's Ready condition.

Flux's v1beta3 Provider is a static object without conditions; fluxbus keeps
the common status fields and reports what a user needs to know there:

1. `reconcile_config` — the Provider's Secret and cert Secret exist and make a
   usable configuration (a missing Secret is retried with backoff; an unusable
   configuration stalls, InvalidConfig, until the spec or a Secret it names changes);
2. `reconcile_delivery` — the last delivery to it did not give up; a failing
   Provider is Ready=False (reason NotificationDispatchFailed) until a later
   delivery succeeds: the dispatchers record it in the notifier's KV bucket,
   whose changes re-run this reconciler at once.

Ready=True reads "Initialized", as Flux's v1beta2 Provider did.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from fluxbus_common import subjects
from fluxbus_common.api.meta import seconds
from fluxbus_common.api.notification import DEFAULT_RECEIVER_INTERVAL, Provider
from fluxbus_common.conditions import Reason
from fluxbus_common.ports import SecretReader
from fluxbus_common.reconcile import DependencyWatch, Result, Step, StepReconciler
from fluxbus_notifier.errors import DeliveryFailing
from fluxbus_notifier.ports import DeliveryHealth
from fluxbus_notifier.resolve import resolve_provider

READY_MESSAGE = "Initialized"
DEFAULT_INTERVAL = DEFAULT_RECEIVER_INTERVAL
"""How often a Provider's Secrets are checked again when nothing else asks
(Flux's v1beta3 Provider has no interval of its own; 10 m like a Receiver's)."""


@dataclass
class ProviderState:
    """What the Provider steps hand each other (nothing yet beyond the object)."""


def _providers_of_secret(
    secret_key: str, _: Any, providers: Mapping[str, dict[str, Any]]
) -> Iterable[str]:
    """The Providers whose secretRef or certSecretRef names the Secret that changed."""
    namespace, _sep, name = secret_key.partition(".")
    for key, doc in providers.items():
        spec = doc.get("spec") or {}
        refs = {(spec.get(f) or {}).get("name") for f in ("secretRef", "certSecretRef")}
        if (doc.get("metadata") or {}).get("namespace") == namespace and name in refs:
            yield key


def _same_provider(key: str, _: Any, providers: Mapping[str, dict[str, Any]]) -> Iterable[str]:
    """A change of a Provider's delivery health re-runs that Provider."""
    return [key] if key in providers else []


class ProviderReconciler(StepReconciler[Provider, ProviderState]):
    """Checks a Provider's configuration and reports its delivery health."""

    kind: ClassVar[str] = "Provider"
    watches = (
        DependencyWatch(kind="Provider", map=_same_provider, bucket=subjects.NOTIFIER_BUCKET),
        DependencyWatch(kind="Secret", map=_providers_of_secret, source="secrets"),
    )

    def __init__(self, secrets: SecretReader, health: DeliveryHealth) -> None:
        self.secrets = secrets
        self.health = health

    def parse(self, doc: dict[str, Any]) -> Provider:
        return Provider.model_validate(doc)

    def interval(self, obj: Provider) -> float:
        return seconds(obj.spec.interval, DEFAULT_INTERVAL)

    def new_state(self, obj: Provider) -> ProviderState:
        return ProviderState()

    def steps(self) -> tuple[Step[Provider, ProviderState], ...]:
        return (self.reconcile_config, self.reconcile_delivery)

    async def reconcile_config(self, obj: Provider, state: ProviderState) -> Result:
        """Raise SecretNotFound / InvalidProviderConfig / ProviderConfigError when it
        cannot be used."""
        await resolve_provider(self.secrets, obj)
        return Result(ready_reason=Reason.SUCCEEDED, ready_message=READY_MESSAGE)

    async def reconcile_delivery(self, obj: Provider, state: ProviderState) -> None:
        """Raise DeliveryFailing while the last delivery to it gave up."""
        failure = await self.health.provider_health(obj.metadata.namespace, obj.metadata.name)
        if failure is not None:
            raise DeliveryFailing(f"delivery failing since {failure.since}: {failure.message}")
