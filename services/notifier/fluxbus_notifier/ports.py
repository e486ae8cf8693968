"""The Protocols the notifier reconcilers take (the store through
`fluxbus_common.ports`, plus this service's own delivery state), and the
types they speak.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ProviderHealth:
    """A Provider whose last delivery gave up (its message is already redacted)."""

    message: str
    since: str


class DeliveryHealth(Protocol):
    """What the dispatchers of every replica found about delivering to Providers."""

    async def provider_health(self, namespace: str, name: str) -> ProviderHealth | None:
        """Return the failure of the Provider's last delivery, or None when it is fine."""
        ...
