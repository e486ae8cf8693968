"""`alertmanager`: one firing alert POSTed to Alertmanager's alerts API (Bearer token,
or basic auth when the Secret has both username and password).

Adapter (HTTP through `transport`).
"""

from __future__ import annotations

from fluxbus_common.events import Event
from fluxbus_notifier.logic.payloads import alertmanager_payload
from fluxbus_notifier.providers.transport import ProviderHTTP, basic_auth


async def send_alertmanager(http: ProviderHTTP, event: Event) -> None:
    """Post the event to Alertmanager as an alert."""
    c = http.config
    headers = {"Authorization": f"Bearer {c.token}"} if c.token else {}
    if c.username and c.password:
        # Flux sets basic auth after the token: it wins when both are given.
        headers = {"Authorization": basic_auth(c.username, c.password)}
    await http.post_json(c.address, alertmanager_payload(event), headers=headers)
