"""`googlechat`: Flux's card message to a Google Chat webhook.

Adapter (HTTP through `transport`).
"""

from __future__ import annotations

from fluxbus_common.events import Event
from fluxbus_notifier.logic.payloads import googlechat_payload
from fluxbus_notifier.providers.transport import ProviderHTTP


async def send_googlechat(http: ProviderHTTP, event: Event) -> None:
    """Post the event to Google Chat."""
    await http.post_json(http.config.address, googlechat_payload(event))
