"""Provider adapters: deliver one event to one Provider over HTTP.

Adapter. `send` looks the Provider type up in `registry.SENDERS`, the one table
of supported types, and runs that module's sender with a `ProviderHTTP` bound to
the Provider's TLS, proxy, timeout and the event id (sent as
`X-Fluxbus-Event-Id` on every request, for receiver-side de-duplication).

Failures raise `DeliveryError` (`retryable`, `status`, `retry_after`), its text
already redacted: neither the address nor a token ever appears in it.
"""

from __future__ import annotations

import aiohttp

from fluxbus_common.events import Event
from fluxbus_notifier.logic.provider_config import ProviderConfig
from fluxbus_notifier.providers.registry import SENDERS
from fluxbus_notifier.providers.transport import EVENT_ID_HEADER, DeliveryError, ProviderHTTP

__all__ = ["EVENT_ID_HEADER", "SUPPORTED_TYPES", "DeliveryError", "send"]

SUPPORTED_TYPES: frozenset[str] = frozenset(SENDERS)
"""Provider types fluxbus can deliver to."""


async def send(
    session: aiohttp.ClientSession, config: ProviderConfig, event: Event, *, event_id: str
) -> None:
    """Deliver `event` (already enriched for its Alert) to the Provider `config` describes.

    Returns when the endpoint accepted it, or when the provider skips the event
    (a commit-status provider and an event without a revision). Raises
    DeliveryError: retryable for connection errors, timeouts, 429 and 5xx; not
    retryable for other 4xx, TLS and configuration problems and unsupported types.
    """
    http = ProviderHTTP(session, config, event_id=event_id)
    sender = SENDERS.get(config.type)
    if sender is None:
        raise http.fail(f"provider type '{config.type}' is not supported", retryable=False)
    await sender(http, event)
