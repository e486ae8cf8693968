"""STAND-IN (branch notif-service): a generic-only provider adapter so the
dispatcher can run; the notif-providers branch delivers the real package
(every provider type behind one table).
"""

from __future__ import annotations

import aiohttp

from fluxbus_common.events import Event
from fluxbus_notifier.logic.provider_config import ProviderConfig

EVENT_ID_HEADER = "X-Fluxbus-Event-Id"
SUPPORTED_TYPES = frozenset({"generic"})


class DeliveryError(Exception):
    """A send failed; `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


async def send(
    session: aiohttp.ClientSession, config: ProviderConfig, event: Event, *, event_id: str
) -> None:
    """POST Flux's event JSON to the Provider's address; raise DeliveryError."""
    if config.type not in SUPPORTED_TYPES:
        raise DeliveryError(f"unsupported provider type {config.type}", retryable=False)
    headers = {
        "Content-Type": "application/json",
        "Gotk-Component": event.reporting_controller,
        EVENT_ID_HEADER: event_id,
    }
    body = event.model_dump_json(by_alias=True, exclude_none=True).encode()
    try:
        async with session.post(
            config.address,
            data=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=config.timeout),
        ) as resp:
            if resp.status >= 300:
                retryable = resp.status >= 500 or resp.status == 429
                raise DeliveryError(
                    f"provider {config.namespace}/{config.name}: HTTP {resp.status}",
                    retryable=retryable,
                    status=resp.status,
                )
    except (aiohttp.ClientError, TimeoutError) as err:
        raise DeliveryError(
            config.redact(f"provider {config.namespace}/{config.name}: {type(err).__name__}"),
            retryable=True,
        ) from err
