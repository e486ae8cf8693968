"""`discord`: the Slack-compatible message to `<address>/slack`.

Adapter (HTTP through `transport`).
"""

from __future__ import annotations

from fluxbus_common.events import Event
from fluxbus_notifier.logic.payloads import discord_payload, discord_url
from fluxbus_notifier.providers.transport import ProviderHTTP


async def send_discord(http: ProviderHTTP, event: Event) -> None:
    """Post the event to a Discord webhook."""
    c = http.config
    await http.post_json(discord_url(c.address), discord_payload(event, c.username))
