"""`generic` and `generic-hmac`: POST of Flux's event JSON with `Gotk-Component`, and
for `generic-hmac` `X-Signature: sha256=<hex HMAC-SHA256 of the body, key = token>`.

Adapter (HTTP through `transport`).
"""

from __future__ import annotations

import hashlib
import hmac

from fluxbus_common.events import Event
from fluxbus_notifier.logic.payloads import event_json, go_json
from fluxbus_notifier.providers.transport import ProviderHTTP

COMPONENT_HEADER = "Gotk-Component"
"""Names the controller that emitted the event (Flux's notification header)."""
SIGNATURE_HEADER = "X-Signature"


def signature(body: bytes, key: str) -> str:
    """The `X-Signature` value of `body`: `sha256=<hex HMAC-SHA256>` keyed with `key`."""
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


async def send_generic(http: ProviderHTTP, event: Event) -> None:
    """POST the event JSON to the address."""
    body = go_json(event_json(event))
    await http.request(
        "POST",
        http.config.address,
        body=body,
        headers={COMPONENT_HEADER: event.reporting_controller},
        extra_headers=True,
    )


async def send_generic_hmac(http: ProviderHTTP, event: Event) -> None:
    """POST the event JSON, signed with the Provider's token."""
    body = go_json(event_json(event))
    headers = {COMPONENT_HEADER: event.reporting_controller}
    # provider_config guarantees a token for generic-hmac; the signature header is
    # set after the Secret's headers so that they cannot replace it.
    await http.request(
        "POST",
        http.config.address,
        body=body,
        headers=headers
        | http.config.headers
        | {SIGNATURE_HEADER: signature(body, http.config.token or "")},
        extra_headers=False,
    )
