"""The notifier's shared delivery state in NATS KV, so that it survives restarts
and every replica sees the same: the dedup window's claims, what on-change
Alerts remember, and which Providers are failing.

- `fluxbus-notifier-dedup` (entries live for the dedup window): `dedup.<hash>`
  → the id of the event that claimed it. Two replicas racing on identical
  events: the compare-and-set create lets one win; the same event delivered
  again (a crash before its ack) keeps its claim and is sent again.
- `fluxbus-notifier`: `onchange.<hash>` → the failure last sent (compare-and-set
  by revision); `provider.<ns>.<name>` → the failure of the last delivery to a
  Provider (absent when fine), which the Provider reconciler reports as Ready.

Adapter: reaches NATS only through the bus.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fluxbus_common import subjects
from fluxbus_common.bus import Bus
from fluxbus_common.conditions import now_rfc3339
from fluxbus_common.ports import KVChange, RevisionConflict
from fluxbus_notifier.logic.noise import Failure
from fluxbus_notifier.ports import ProviderHealth


def provider_health_key(namespace: str, name: str) -> str:
    """The key of a Provider's delivery health (its object key)."""
    return subjects.object_key("Provider", namespace, name)


class NotifierState:
    """The notifier's KV buckets, behind typed methods; satisfies `DeliveryHealth`."""

    def __init__(self, bus: Bus, dedup_window: float) -> None:
        self._bus = bus
        self.dedup_window = dedup_window

    async def open(self) -> None:
        """Create the buckets if missing (the dedup bucket's TTL is the window)."""
        await self._bus.ensure_bucket(subjects.NOTIFIER_BUCKET)
        if self.dedup_window > 0:
            await self._bus.ensure_bucket(subjects.NOTIFIER_DEDUP_BUCKET, ttl=self.dedup_window)

    # -- dedup -------------------------------------------------------------

    async def claim(self, key: str, event_id: str) -> bool:
        """Claim a dedup key for an event: True when this event may be sent (it is
        the first in the window, or it holds the claim already), False for a duplicate."""
        if self.dedup_window <= 0:
            return True
        bucket = subjects.NOTIFIER_DEDUP_BUCKET
        try:
            await self._bus.kv_put(bucket, key, {"eventId": event_id}, revision=0)
            return True
        except RevisionConflict:
            entry = await self._bus.kv_get(bucket, key)
            if entry is None:  # expired in between: the window is over
                return await self.claim(key, event_id)
            return entry.value.get("eventId") == event_id

    # -- on-change ---------------------------------------------------------

    async def last_failure(self, key: str) -> tuple[Failure | None, int]:
        """Return the failure an on-change Alert last sent for an object, and the
        revision to update it at (0: never written)."""
        entry = await self._bus.kv_get(subjects.NOTIFIER_BUCKET, key)
        if entry is None:
            return None, 0
        return Failure.from_doc(entry.value), entry.revision

    async def remember(self, key: str, failure: Failure | None, revision: int) -> int | None:
        """Store what an on-change Alert remembers now, if the key is still at
        `revision`; return the new revision, or None when another replica moved it first."""
        doc = failure.to_doc() if failure is not None else {"ok": True}
        try:
            return await self._bus.kv_put(subjects.NOTIFIER_BUCKET, key, doc, revision=revision)
        except RevisionConflict:
            return None

    # -- provider health ---------------------------------------------------

    async def provider_health(self, namespace: str, name: str) -> ProviderHealth | None:
        entry = await self._bus.kv_get(
            subjects.NOTIFIER_BUCKET, provider_health_key(namespace, name)
        )
        if entry is None:
            return None
        return ProviderHealth(
            message=str(entry.value.get("message", "")), since=str(entry.value.get("since", ""))
        )

    async def provider_failing(self, namespace: str, name: str, message: str) -> None:
        """Record that delivering to a Provider gave up (`message` must be redacted)."""
        await self._bus.kv_put(
            subjects.NOTIFIER_BUCKET,
            provider_health_key(namespace, name),
            {"message": message, "since": now_rfc3339()},
        )

    async def provider_recovered(self, namespace: str, name: str) -> None:
        """Record that a delivery to a Provider succeeded again."""
        await self._bus.kv_delete(subjects.NOTIFIER_BUCKET, provider_health_key(namespace, name))

    def watch_provider_health(self) -> AsyncIterator[KVChange]:
        """Yield every failing Provider's entry, then every change (None: recovered)."""
        return self._bus.kv_watch(subjects.NOTIFIER_BUCKET, subjects.kind_filter("Provider"))
