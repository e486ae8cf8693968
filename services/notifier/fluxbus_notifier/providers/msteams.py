"""`msteams`: an Adaptive Card to a Teams workflow webhook, or Flux's MessageCard to a
legacy Office 365 connector (`*.webhook.office.com`).

Adapter (HTTP through `transport`).
"""

from __future__ import annotations

from fluxbus_common.events import Event
from fluxbus_notifier.logic.payloads import msteams_payload
from fluxbus_notifier.providers.transport import ProviderHTTP


async def send_msteams(http: ProviderHTTP, event: Event) -> None:
    """Post the event to Microsoft Teams."""
    address = http.config.address
    await http.post_json(address, msteams_payload(event, address))
